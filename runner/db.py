"""Connections, role switching and the runner's named SQL. Knows nothing of payments."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

SQL_DIR = Path(__file__).parent / "sql"


class ConfigurationError(RuntimeError):
    """A setting the runner needs is missing or malformed."""


def database_url() -> str:
    """DATABASE_URL, read at call time; libpq's PG* variables fill in what it leaves out."""
    url = os.environ.get("DATABASE_URL", "")
    if not url and not os.environ.get("PGDATABASE"):
        raise ConfigurationError(
            "DATABASE_URL is not set. Set it (postgresql://user@host/db) or use the libpq PG* variables."
        )
    return url


@cache
def named_sql(name: str) -> str:
    """The text of runner/sql/<name>.sql."""
    return (SQL_DIR / f"{name}.sql").read_text()


def connect(url: str | None = None, *, application_name: str = "outbox", autocommit: bool = False,
            role: str | None = None) -> psycopg.Connection:
    """A connection, optionally switched to `role` for its whole life (SET ROLE)."""
    conn = psycopg.connect(url if url is not None else database_url(), autocommit=autocommit,
                           application_name=application_name)
    if role is not None:
        set_role(conn, role)
    return conn


def set_role(conn: psycopg.Connection, role: str) -> None:
    with conn.transaction():
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))


@contextmanager
def connection(url: str | None = None, **kwargs: object) -> Iterator[psycopg.Connection]:
    conn = connect(url, **kwargs)  # type: ignore[arg-type]
    try:
        yield conn
    finally:
        conn.close()


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, None for anything else."""
    return getattr(exc, "sqlstate", None)


def first_row(cursor: psycopg.Cursor[Any]) -> Any:
    """The row of a statement that always returns one (an aggregate, a one-row view)."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError(f"no row from a statement that always returns one: {cursor._query!r}")
    return row
