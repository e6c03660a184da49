"""A server to work on and scratch databases on it: the one place that creates, migrates and
drops a database of the runner's own (the tests, `outbox evidence`, `outbox bench`).

The server is DATABASE_URL's, or a throwaway embedded cluster when it is unset. A scratch
database is never the one DATABASE_URL names, so its data is never touched.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from runner import db
from runner.clusters import embedded as cluster
from runner.schema import migrate, package


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server the runner may create databases on."""

    url: str  # a login with CREATEDB, which owns the scratch databases
    cluster: cluster.EmbeddedCluster | None
    where: str  # "DATABASE_URL" or "embedded cluster"

    @property
    def admin_url(self) -> str:
        """A superuser connection on the embedded cluster; DATABASE_URL's login otherwise."""
        return self.cluster.admin_url if self.cluster else self.url

    def database_url(self, name: str) -> str:
        """The same server and login, another database."""
        return make_conninfo(self.url, dbname=name)


@contextmanager
def server() -> Iterator[Server]:
    """DATABASE_URL's server, or an embedded cluster started for the block and removed after it."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield Server(url=url, cluster=None, where="DATABASE_URL")
        return
    with cluster.EmbeddedCluster() as embedded:
        yield Server(url=embedded.database_url, cluster=embedded, where="embedded cluster")


def create_database(server_url: str, prefix: str) -> str:
    """A new empty database named `<prefix>_<pid>_<random>`; returns its name."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with db.connection(server_url, application_name="outbox scratch", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(server_url: str, name: str) -> None:
    with db.connection(server_url, application_name="outbox scratch", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def prepare(url: str, say: Callable[[str], None] = lambda line: None, *, root: Path | None = None) -> None:
    """Migrate the database (to the SQL package at `root`, e.g. a release point; the current one by
    default) and grant every runtime role to the login, so that it can act as each one through SET
    ROLE (the tests, the bench's pgbench `-c role=`)."""
    migrate.migrate(url, say=say, root=root)
    with db.connection(url, application_name="outbox scratch", autocommit=True) as conn:
        for role in package.runtime_roles(root):
            conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))


@contextmanager
def database(server_url: str, prefix: str, *, prepared: bool = True,
             say: Callable[[str], None] = lambda line: None, admin_url: str | None = None) -> Iterator[str]:
    """A scratch database for the block (migrated, with the runtime roles granted, unless
    `prepared` is False), dropped after it; yields its URL. `admin_url` (Server.admin_url) drops it:
    on PostgreSQL 14 only a superuser's DROP DATABASE ... WITH (FORCE) ends an autovacuum worker
    that is busy in it."""
    name = create_database(server_url, prefix)
    try:
        url = make_conninfo(server_url, dbname=name)
        if prepared:
            prepare(url, say)
        yield url
    finally:
        drop_database(admin_url or server_url, name)


def empty_package_tables(conn: psycopg.Connection, *also: str) -> list[str]:
    """TRUNCATE every table of the package but the migration ledger and the settings (read from the catalog), and the
    tables named in `also`, as the owner: a clean slate for the next proof or bench run. Returns
    the package's tables."""
    tables = [row[0] for row in conn.execute(db.named_sql("package_tables"))]
    conn.execute(f"TRUNCATE {', '.join([*tables, *also])}")
    return tables
