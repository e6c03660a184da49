"""outbox migrate: applies sql/ to a database exactly once, in order, under an advisory lock.

Versioned files (sql/tables/NNNN_*.sql) are applied once each, in number order. Repeatable files
(sql/views/*.sql, then sql/functions/*.sql) are re-applied whenever their checksum changes. Every
file of a run, with its ledger row, commits in ONE transaction: clients see the package as it was
or as it is now, never a new table beside the functions of the previous release. A versioned file
is preceded by the locks sql/tables/locks.toml declares for it. Every statement runs under a
short lock_timeout; a run that times out (or is chosen as a deadlock victim) rolls back entirely
and starts again after a backoff, saying what it waited for, and gives up after the last retry.
The whole run holds a session advisory lock, so two runs at once apply every file once and both
succeed. After the run, the ledger is converted to a partitioned table if it is not one yet,
step by step outside any one transaction, under a lock of its own (runner/schema/ledger_conversion.py),
and its monthly partitions ahead are created.
"""

from __future__ import annotations

import hashlib
import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from runner import db
from runner.schema import ledger_conversion, lockwait, package

# pg_advisory_lock key: the first 8 bytes of sha256('payment_outbox.migrate'), as a signed bigint.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"payment_outbox.migrate").digest()[:8], "big", signed=True)
VERSIONED_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
REPEATABLE_DIRS = ("views", "functions")
LOCKS_FILE = "tables/locks.toml"
LOCK_MODES = ("ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
              "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE")
LOCKED_TABLE = re.compile(r"^payment_outbox\.[a-z_][a-z0-9_]*$")


class MigrationError(RuntimeError):
    """The run was refused; nothing was changed."""


class LockWaitGaveUp(MigrationError, lockwait.GaveUp):
    """Every attempt of the run waited on a lock longer than the lock timeout; nothing was changed."""


@dataclass(frozen=True)
class SqlFile:
    name: str  # path below sql/, the ledger key
    kind: str  # versioned | repeatable
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class Plan:
    missing_roles: list[str]
    files: list[SqlFile]
    ledger_exists: bool
    locks: dict[str, list[sql.Composed]] = field(default_factory=dict)  # file name -> LOCK TABLE statements

    @property
    def empty(self) -> bool:
        return not self.missing_roles and not self.files


def read_file(path: Path, root: Path, kind: str) -> SqlFile:
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n").replace("\r", "\n")
    return SqlFile(name=path.relative_to(root).as_posix(), kind=kind, text=text)


def package_files(root: Path | None = None) -> list[SqlFile]:
    """Every packaged file in apply order: versioned by number, then views, then functions."""
    root = root or package.sql_root()
    package.require_complete(root)
    versioned = []
    for path in sorted((root / "tables").glob("*.sql")):
        if not VERSIONED_NAME.match(path.name):
            raise MigrationError(f"{path.relative_to(root)}: versioned files are named NNNN_name.sql")
        versioned.append(read_file(path, root, "versioned"))
    numbers = [f.name.split("/")[1][:4] for f in versioned]
    if len(set(numbers)) != len(numbers):
        raise MigrationError(f"two versioned files share a number: {sorted(numbers)}")
    repeatable = [read_file(path, root, "repeatable")
                  for directory in REPEATABLE_DIRS for path in sorted((root / directory).glob("*.sql"))]
    return versioned + repeatable


def lock_declarations(root: Path | None = None) -> dict[str, list[sql.Composed]]:
    """The LOCK TABLE statements sql/tables/locks.toml declares, by versioned file name. A declaration
    for a file this root does not hold is left out (a root cut down to an earlier release); that
    every declaration names a file of sql/tables/ is checked by tests/unit/test_migrate_locks.py."""
    root = root or package.sql_root()
    path = root / LOCKS_FILE
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        declared = tomllib.load(handle)
    versioned = {f.name for f in package_files(root) if f.kind == "versioned"}
    statements: dict[str, list[sql.Composed]] = {}
    for name, entry in declared.items():
        if name not in versioned:
            continue
        statements[name] = []
        for lock in entry.get("locks", []):
            table, mode = lock.get("table", ""), lock.get("mode", "")
            if not LOCKED_TABLE.match(table) or mode not in LOCK_MODES:
                raise MigrationError(f"{LOCKS_FILE}: {name}: want a payment_outbox table and one of "
                                     f"{', '.join(LOCK_MODES)}, got table {table!r}, mode {mode!r}")
            schema, relation = table.split(".")
            statements[name].append(sql.SQL("LOCK TABLE {} IN {} MODE").format(
                sql.Identifier(schema, relation), sql.SQL(mode)))
    return statements


def roles_file(root: Path) -> SqlFile:
    return read_file(root / package.ROLES_FILE, root, "roles")


def plan(conn: psycopg.Connection, files: list[SqlFile], roles: tuple[str, ...],
         locks: dict[str, list[sql.Composed]] | None = None) -> Plan:
    """What a run would apply; raises MigrationError when an applied file changed or is out of order."""
    missing_roles = [row[0] for row in conn.execute(db.named_sql("missing_roles"), {"roles": list(roles)})]
    applied: dict[str, tuple[str, str]] = {}
    ledger_exists = bool(db.first_row(conn.execute(db.named_sql("ledger_exists")))[0])
    if ledger_exists:
        applied = {name: (kind, sha) for name, kind, sha in conn.execute(db.named_sql("applied_migrations"))}
    conn.rollback()

    last_applied = max((name for name, (kind, _) in applied.items() if kind == "versioned"), default="")
    todo = []
    for file in files:
        recorded = applied.get(file.name)
        if file.kind == "versioned":
            if recorded is not None:
                if recorded[1] != file.sha256:
                    raise MigrationError(
                        f"{file.name} was applied with sha256 {recorded[1]} and has changed since "
                        f"(now {file.sha256}). Applied files are immutable: revert the edit and put "
                        f"the change in a new numbered file."
                    )
                continue
            if file.name < last_applied:
                raise MigrationError(
                    f"{file.name} is new but numbered below {last_applied}, which is already applied. "
                    f"Renumber it after the last applied file."
                )
            todo.append(file)
        elif recorded is None or recorded[1] != file.sha256:
            todo.append(file)
    locks = locks or {}
    return Plan(missing_roles=missing_roles, files=todo, ledger_exists=ledger_exists,
                locks={f.name: locks[f.name] for f in todo if f.name in locks})


def migrate(url: str, *, dry_run: bool = False, say: Callable[[str], None] = print,
            root: Path | None = None, policy: lockwait.LockPolicy | None = None,
            convert_ledger: bool = True) -> Plan:
    """Apply what is not applied yet, then (unless `convert_ledger` is False: `outbox
    convert-ledger` does it later) partition the ledger if it is not yet. Returns the plan that
    was (or, dry, would be) applied."""
    root = root or package.sql_root()
    files = package_files(root)
    roles = package.runtime_roles(root)
    locks = lock_declarations(root)
    policy = policy or lockwait.resolve()
    with db.connection(url, application_name="outbox migrate") as conn:
        db.require_supported_server(conn)
        if dry_run:
            work = plan(conn, files, roles, locks)
            _describe(work, say, dry_run=True)
            if convert_ledger and ledger_conversion.applies_to(root) and not ledger_conversion.is_partitioned(conn):
                say("migrate: would then partition the ledger online (outbox convert-ledger)")
            return work
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        conn.commit()
        try:
            with lockwait.Watch(url, conn.info.backend_pid) as watch:
                work = _apply_retrying(conn, files, locks, roles_file(root), roles, say, policy, watch)
        finally:
            conn.rollback()
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            conn.commit()
    # After the lock: a second run waiting for it inside a statement holds a snapshot, which the
    # conversion's CREATE INDEX CONCURRENTLY would wait for. The conversion has its own lock.
    if convert_ledger and ledger_conversion.applies_to(root):
        ledger_conversion.convert(url, say=say, root=root, policy=policy)
    return work


def _apply_retrying(conn: psycopg.Connection, files: list[SqlFile], locks: dict[str, list[sql.Composed]],
                    roles_sql: SqlFile, roles: tuple[str, ...], say: Callable[[str], None],
                    policy: lockwait.LockPolicy, watch: lockwait.Watch) -> Plan:
    """_apply, again after a lock timeout or a deadlock, until policy.retries are spent."""
    for attempt in range(policy.retries + 1):
        watch.reset()
        try:
            return _apply(conn, files, locks, roles_sql, roles, say, policy)
        except psycopg.Error as exc:
            reason = lockwait.RETRYABLE.get(db.sqlstate(exc) or "")
            if reason is None:
                raise
            conn.rollback()
            waited = watch.last.describe() if watch.last else "a lock the watch did not see"
            if attempt == policy.retries:
                raise LockWaitGaveUp(
                    f"gave up after {attempt + 1} attempt(s): the last waited longer than lock_timeout "
                    f"{policy.timeout_seconds:g}s ({reason}, SQLSTATE {db.sqlstate(exc)}) for {waited}. "
                    f"Nothing of this run was applied. End or wait out the blocking transaction and run "
                    f"migrate again, or give it longer (--lock-timeout, --lock-retries)."
                ) from exc
            delay = policy.backoff(attempt + 1)
            say(f"migrate: {reason} (SQLSTATE {db.sqlstate(exc)}) after waiting for {waited}; nothing applied; "
                f"retry {attempt + 1}/{policy.retries} in {delay:g}s")
            time.sleep(delay)  # backoff: lets the blocking transactions finish before the next attempt
    raise AssertionError("unreachable")


def _apply(conn: psycopg.Connection, files: list[SqlFile], locks: dict[str, list[sql.Composed]],
           roles_sql: SqlFile, roles: tuple[str, ...], say: Callable[[str], None],
           policy: lockwait.LockPolicy) -> Plan:
    work = plan(conn, files, roles, locks)
    _describe(work, say, dry_run=False)
    if work.missing_roles:
        with conn.transaction():
            _set_lock_timeout(conn, policy)
            conn.execute(roles_sql.text)
        say(f"created roles: {', '.join(work.missing_roles)}")
    if not work.ledger_exists:
        with conn.transaction():
            _set_lock_timeout(conn, policy)
            conn.execute(db.named_sql("migration_ledger"))
    with conn.transaction():
        _set_lock_timeout(conn, policy)
        for file in work.files:
            for statement in work.locks.get(file.name, []):
                conn.execute(statement)
            conn.execute(file.text)
            conn.execute(db.named_sql("record_migration"),
                         {"file_name": file.name, "kind": file.kind, "sha256": file.sha256})
    for index, file in enumerate(work.files, start=1):
        say(f"[{index}/{len(work.files)}] applied {file.name} ({file.kind}, sha256 {file.sha256[:12]})")
    if not work.empty:
        say(f"migrate: applied {len(work.files)} file(s) in one transaction")
    return work


def _set_lock_timeout(conn: psycopg.Connection, policy: lockwait.LockPolicy) -> None:
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (policy.lock_timeout_setting,))


def _describe(work: Plan, say: Callable[[str], None], *, dry_run: bool) -> None:
    if work.empty:
        say("migrate: database is up to date; nothing to apply")
        return
    verb = "would apply" if dry_run else "applying"
    if work.missing_roles:
        say(f"migrate: {'would create' if dry_run else 'creating'} roles: {', '.join(work.missing_roles)}")
    say(f"migrate: {verb} {len(work.files)} file(s)")
    if dry_run:
        for file in work.files:
            locks = work.locks.get(file.name)
            first = f", after {len(locks)} LOCK TABLE from {LOCKS_FILE}" if locks else ""
            say(f"  {file.name} ({file.kind}, sha256 {file.sha256[:12]}{first})")
