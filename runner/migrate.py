"""outbox migrate: applies sql/ to a database exactly once, in order, under an advisory lock.

Versioned files (sql/tables/NNNN_*.sql) are applied once each, in number order. Repeatable files
(sql/views/*.sql, then sql/functions/*.sql) are re-applied whenever their checksum changes. Each
file commits in one transaction with its ledger row. The whole run holds a session advisory lock,
so two runs at once apply every file once and both succeed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from runner import db, package

# pg_advisory_lock key: the first 8 bytes of sha256('payment_outbox.migrate'), as a signed bigint.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"payment_outbox.migrate").digest()[:8], "big", signed=True)
VERSIONED_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
REPEATABLE_DIRS = ("views", "functions")


class MigrationError(RuntimeError):
    """The run was refused; nothing was changed."""


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


def roles_file(root: Path) -> SqlFile:
    return read_file(root / package.ROLES_FILE, root, "roles")


def plan(conn: psycopg.Connection, files: list[SqlFile], roles: tuple[str, ...]) -> Plan:
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
    return Plan(missing_roles=missing_roles, files=todo, ledger_exists=ledger_exists)


def migrate(url: str, *, dry_run: bool = False, say: Callable[[str], None] = print,
            root: Path | None = None) -> Plan:
    """Apply what is not applied yet. Returns the plan that was (or, dry, would be) applied."""
    root = root or package.sql_root()
    files = package_files(root)
    roles = package.runtime_roles(root)
    with db.connection(url, application_name="outbox migrate") as conn:
        db.require_supported_server(conn)
        if dry_run:
            work = plan(conn, files, roles)
            _describe(work, say, dry_run=True)
            return work
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        conn.commit()
        try:
            return _apply(conn, files, roles_file(root), roles, say)
        finally:
            conn.rollback()
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            conn.commit()


def _apply(conn: psycopg.Connection, files: list[SqlFile], roles_sql: SqlFile, roles: tuple[str, ...],
           say: Callable[[str], None]) -> Plan:
    work = plan(conn, files, roles)
    _describe(work, say, dry_run=False)
    if work.missing_roles:
        with conn.transaction():
            conn.execute(roles_sql.text)
        say(f"created roles: {', '.join(work.missing_roles)}")
    if not work.ledger_exists:
        with conn.transaction():
            conn.execute(db.named_sql("migration_ledger"))
    for index, file in enumerate(work.files, start=1):
        with conn.transaction():
            conn.execute(file.text)
            conn.execute(db.named_sql("record_migration"),
                         {"file_name": file.name, "kind": file.kind, "sha256": file.sha256})
        say(f"[{index}/{len(work.files)}] applied {file.name} ({file.kind}, sha256 {file.sha256[:12]})")
    if not work.empty:
        say(f"migrate: applied {len(work.files)} file(s)")
    return work


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
            say(f"  {file.name} ({file.kind}, sha256 {file.sha256[:12]})")
