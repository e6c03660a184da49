"""Connections, role switching and the runner's named SQL. Knows nothing of payments."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

SQL_DIR = Path(__file__).parent / "sql"
# The oldest server the package runs on: its functions have SQL-standard bodies (BEGIN ATOMIC),
# which PostgreSQL 14 introduced. The proofs run on 14 to 18 (make prove PG=14 ... PG=18).
MINIMUM_SERVER_VERSION = 140000


class ConfigurationError(RuntimeError):
    """A setting the runner needs is missing or malformed."""


class UnsupportedServerError(ConfigurationError):
    """The server is older than the package supports; nothing was changed."""


class ServerUnreachable(psycopg.OperationalError):
    """No host of the URL took the connection (down, or read-only where the URL wants read-write).
    A psycopg error, so a long-running part retries it; commands exit 2 with its message."""


class PoolerError(ConfigurationError):
    """A command that needs a session of its own was given a URL through a connection pooler."""


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
    libpq parameters (keepalives, ...), added to the URL's.

    With a role, the connection looks for a connection pooler in the same round trip that sets
    the role (_switch_role): through a pooler it keeps no session state, because a transaction
    pooler hands the server connection to another client after each transaction: psycopg's
    automatic server-side prepared statements are off, and instead of SET ROLE the login must
    itself hold `role` (be a member of it), which is checked. Every connection of a runtime part
    (worker, listener, repair, ingest through Client) has a role, so none pays a round trip more
    than its SET ROLE. Without a role (the owner's commands, tools) nothing is looked for; the
    commands that need a session ask with require_direct."""
    target = url if url is not None else database_url()
    try:
        conn = psycopg.connect(target, autocommit=autocommit, application_name=application_name, **conninfo)
    except psycopg.OperationalError as exc:
        if exc.sqlstate is None or exc.sqlstate.startswith("08") or exc.sqlstate == "57P03":
            raise unreachable(target, exc) from exc
        raise  # refused for a reason of its own (a password, a missing database): said as it is
    try:
        if role is not None:
            _switch_role(conn, role)
    except BaseException:
        conn.close()
        raise
    return conn


def hosts(url: str) -> list[str]:
    """host:port of every host a URL names, in the order libpq tries them ("local" for a socket)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return []
    names = str(params.get("host") or os.environ.get("PGHOST") or "local").split(",")
    ports = str(params.get("port") or os.environ.get("PGPORT") or "5432").split(",")
    if len(ports) == 1:
        ports = ports * len(names)
    return [f"{name if not name.startswith('/') else 'local'}:{port}" for name, port in zip(names, ports, strict=False)]


def unreachable(url: str, exc: psycopg.OperationalError) -> ServerUnreachable:
    """The error of a connection no host of `url` took: names the hosts tried and why."""
    wants = conninfo_to_dict(url).get("target_session_attrs") if url else None
    which = "a writable server" if wants in ("read-write", "primary") else "a server"
    detail = " ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    error = ServerUnreachable(f"could not reach {which}: tried {', '.join(hosts(url)) or 'the default host'} "
                              f"(each down, refusing connections, or read-only): {detail}")
    return error


# What connect() found, per connection, so behind_pooler() asks the server once.
_POOLED: weakref.WeakKeyDictionary[psycopg.Connection, bool] = weakref.WeakKeyDictionary()

# One round trip: whether a pooler answered the startup (its backend key is not the server's
# pg_backend_pid()), whether the login holds the role, and, only when no pooler is there, the
# session's role (set_config('role') is SET ROLE, the same membership check).
_SWITCH_ROLE = ("SELECT pg_catalog.pg_backend_pid() <> %(pid)s, pg_catalog.pg_has_role(current_user, %(role)s, "
                "'USAGE'), CASE WHEN pg_catalog.pg_backend_pid() = %(pid)s "
                "THEN pg_catalog.set_config('role', %(role)s, false) END")


def behind_pooler(conn: psycopg.Connection) -> bool:
    """Whether a connection pooler sits between us and the server. A pooler answers the startup
    itself, with a backend key (pid) of its own: PgBouncer's is random, never the pid of the
    server process that runs our statements (pg_backend_pid()). Asked once per connection
    (connect() with a role has asked already)."""
    if conn in _POOLED:
        return _POOLED[conn]
    with conn.cursor() as cur:
        row = cur.execute("SELECT pg_catalog.pg_backend_pid()").fetchone()
    if not conn.autocommit:
        conn.rollback()
    pooled = _POOLED[conn] = row is not None and row[0] != conn.info.backend_pid
    if pooled:
        conn.prepare_threshold = None
    return pooled


def _switch_role(conn: psycopg.Connection, role: str) -> None:
    """SET ROLE `role` for the session on a direct connection; behind a pooler no session state:
    automatic prepared statements off, and the login must hold the role itself."""
    with conn.cursor() as cur:
        row = cur.execute(_SWITCH_ROLE, {"pid": conn.info.backend_pid, "role": role}).fetchone()
    if not conn.autocommit:
        conn.commit()  # the role is the session's from here on, as SET ROLE in its own transaction
    pooled, member = (bool(row[0]), bool(row[1])) if row else (False, False)
    _POOLED[conn] = pooled
    if pooled:
        conn.prepare_threshold = None
        require_member(conn, role, member)


def require_member(conn: psycopg.Connection, role: str, member: bool) -> None:
    if not member:
        raise ConfigurationError(
            f"the URL goes through a connection pooler, where a session's SET ROLE {role} would outlive the "
            f"transaction and pass to other clients; connect as a login that is a member of {role} "
            f"(GRANT {role} TO <login>) instead of {conn.info.user}")


def require_direct(url: str, command: str, why: str) -> None:
    """Refuse a URL that goes through a pooler, for a command that needs a session of its own."""
    with connection(url, application_name=f"outbox {command}", autocommit=True) as conn:
        if behind_pooler(conn):
            raise PoolerError(
                f"the URL goes through a connection pooler (its backend pid {conn.info.backend_pid} is not the "
                f"server's {conn.execute('SELECT pg_catalog.pg_backend_pid()').fetchone()[0]}); "  # type: ignore[index]
                f"outbox {command} {why}, which a transaction pooler does not keep. Give it a direct URL of "
                f"the primary (DATABASE_URL=postgresql://...@primary:5432/...); nothing was changed.")


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
