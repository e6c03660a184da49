"""The package distributed on a Citus coordinator, by participant_id (outbox migrate --citus).

After the single-node package is applied (runner/migrate.py), on a coordinator:
1. once, on a fresh install: sql/citus/distribute.sql, in one transaction, with Citus's unsafe
   triggers enabled deliberately for it (the package's append-only and rail triggers are created
   on every shard; each reads only its own row's shard or a reference table), then the package's
   views and functions again (bound to the distributed tables by name);
2. every run: sql/citus/functions/*.sql (the Citus bodies of the hot path: participant-scoped
   enqueue and completion, the bucket claim and repair), then sql/citus/delegate.sql (every
   package function on every node, the hot path delegated by participant or bucket), then the
   buckets are refilled from the shards.
A run on a database the package is already distributed in repeats step 2 only, so a plain
`outbox migrate` there keeps the Citus bodies that a re-applied single-node file would replace.
These files are not in the migration ledger: step 1 is guarded by Citus's own catalog, step 2 is
idempotent and cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg

from runner import db
from runner.schema import package

DISTRIBUTED_TABLE = "payment_outbox.payment_outbox_pending"
ITEM_TABLES = ("payment_outbox_pending", "payment_outbox_attempts", "payment_outbox_idempotency_keys",
               "participant_outbox_sequences")


class CitusInstallError(RuntimeError):
    """The database cannot be distributed as asked; nothing was changed. The message says why."""


def citus_root(root: Path | None = None) -> Path:
    return (root or package.sql_root()) / "citus"


def has_citus(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_catalog.pg_extension WHERE extname = 'citus'").fetchone()
    conn.rollback()
    return bool(row and row[0])


def is_distributed(conn: psycopg.Connection) -> bool:
    if not has_citus(conn):
        return False
    row = conn.execute("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = to_regclass(%s)",
                       (DISTRIBUTED_TABLE,)).fetchone()
    conn.rollback()
    return bool(row and row[0])


def worker_count(conn: psycopg.Connection) -> int:
    """Active primary nodes that may hold shards, the coordinator (group 0) excluded."""
    row = conn.execute(
        "SELECT count(*) FROM pg_dist_node WHERE isactive AND noderole = 'primary' "
        "AND shouldhaveshards AND groupid <> 0").fetchone()
    conn.rollback()
    return int(row[0]) if row else 0


def install(url: str, *, say: Callable[[str], None] = print, root: Path | None = None,
            required: bool = True) -> bool:
    """Distribute the installed package (once) and apply its Citus functions. With `required`
    False (a plain migrate), only a database already distributed is touched. Returns whether the
    database is distributed afterwards."""
    directory = citus_root(root)
    with db.connection(url, application_name="outbox migrate --citus") as conn:
        if not has_citus(conn):
            if required:
                raise CitusInstallError(
                    "--citus: the citus extension is not installed in this database: run CREATE "
                    "EXTENSION citus as a superuser on the coordinator first (docs/scale-out.md)")
            return False
        distributed = is_distributed(conn)
        if not distributed and not required:
            return False
        if not distributed:
            _require_workers(conn)
            _require_empty(conn)
            say("migrate: distributing the package by participant_id (sql/citus/distribute.sql)")
            with conn.transaction():
                conn.execute("SET LOCAL citus.enable_unsafe_triggers = on")
                conn.execute(_read(directory / "distribute.sql"))
                # A reference table with a copy on the coordinator becomes that copy (a shard) under
                # its old oid, and a new table takes its name: a SQL-standard body (BEGIN ATOMIC) or
                # a view bound to the old oid would read the coordinator's copy alone. Re-applied,
                # they bind to the tables by name again.
                for path in _single_node_bodies(root):
                    conn.execute(_read(path))
        with conn.transaction():
            for path in sorted((directory / "functions").glob("*.sql")):
                conn.execute(_read(path))
        with conn.transaction():
            conn.execute(_read(directory / "delegate.sql"))
            buckets = conn.execute("SELECT payment_outbox._refresh_outbox_buckets()").fetchone()
        say(f"migrate: Citus functions applied; {buckets[0] if buckets else 0} claim buckets")
    return True


def _require_workers(conn: psycopg.Connection) -> None:
    if worker_count(conn) == 0:
        raise CitusInstallError(
            "--citus: this coordinator has no active worker that may hold shards: add one with "
            "SELECT citus_add_node('host', port) as a superuser, then migrate again (nothing was changed)")


def _require_empty(conn: psycopg.Connection) -> None:
    holding = [table for table in ITEM_TABLES
               if conn.execute(f"SELECT EXISTS (SELECT FROM payment_outbox.{table})").fetchone() == (True,)]
    conn.rollback()
    if holding:
        raise CitusInstallError(
            f"--citus: the package already holds items ({', '.join(holding)}): distributing a database in "
            f"use is not supported by this release; install on a fresh database and move participants "
            f"over (docs/scale-out.md). Nothing was changed")


def _single_node_bodies(root: Path | None) -> list[Path]:
    sql_root = root or package.sql_root()
    return [path for directory in ("views", "functions") for path in sorted((sql_root / directory).glob("*.sql"))]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")
