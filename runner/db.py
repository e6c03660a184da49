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
# The oldest server the package runs on: its functions have SQL-standard bodies (BEGIN ATOMIC),
# which PostgreSQL 14 introduced. The proofs run on 14 to 18 (make prove PG=14 ... PG=18).
MINIMUM_SERVER_VERSION = 140000


class ConfigurationError(RuntimeError):
    """A setting the runner needs is missing or malformed."""


class UnsupportedServerError(ConfigurationError):
    """The server is older than the package supports; nothing was changed."""


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
            role: str | None = None, **conninfo: Any) -> psycopg.Connection:
    """A connection, optionally switched to `role` for its whole life (SET ROLE); `conninfo`: more
    libpq parameters (keepalives, ...), added to the URL's."""
    conn = psycopg.connect(url if url is not None else database_url(), autocommit=autocommit,
                           application_name=application_name, **conninfo)
    if role is not None:
        set_role(conn, role)
    return conn


def require_supported_server(conn: psycopg.Connection) -> None:
    """Refuse a server older than MINIMUM_SERVER_VERSION, before anything is applied to it."""
    check_server_version(conn.info.server_version)


def check_server_version(version_num: int) -> None:
    """`version_num` as server_version_num gives it: 140005 is 14.5, 90624 is 9.6.24."""
    if version_num < MINIMUM_SERVER_VERSION:
        raise UnsupportedServerError(
            f"the server is PostgreSQL {_readable_version(version_num)}; payment-outbox needs "
            f"PostgreSQL {MINIMUM_SERVER_VERSION // 10000} or later (its functions use BEGIN ATOMIC "
            f"bodies). Nothing was changed: upgrade the server, then run migrate again."
        )


def _readable_version(version_num: int) -> str:
    if version_num >= 100000:
        return f"{version_num // 10000}.{version_num % 10000}"
    return f"{version_num // 10000}.{version_num // 100 % 100}.{version_num % 100}"


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
