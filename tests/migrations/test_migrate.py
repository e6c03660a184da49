"""`outbox migrate`: applied once, in order, refusing edits, safe when run twice at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from runner import db
from runner.clusters import scratch
from runner.schema import migrate, package
from tests.conftest import Database, Server, drop_database
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof


@pytest.fixture
def empty_database(server: Server) -> Iterator[Database]:
    name = scratch.create_database(server.url, "outbox_migrate")
    try:
        yield Database(server=server, name=name, url=server.database_url(name))
    finally:
        drop_database(server, name)


@pytest.fixture
def sql_copy(tmp_path: Path) -> Path:
    root = tmp_path / "sql"
    shutil.copytree(package.sql_root(), root)
    return root


def ledger(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT file_name, kind, sha256 FROM payment_outbox.schema_migrations ORDER BY 1").fetchall()


def schema_exists(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT to_regnamespace('payment_outbox') IS NOT NULL").fetchone()[0]


def test_second_run_applies_nothing(empty_database: Database, proof: ProofRecord) -> None:
    lines: list[str] = []
    first = migrate.migrate(empty_database.url, say=lines.append)
    second = migrate.migrate(empty_database.url, say=lines.append)
    files = migrate.package_files()
    proof.check("first run applies every packaged file", want=len(files), have=len(first.files))
    proof.check("second run applies nothing", want=0, have=len(second.files))
    proof.check("second run says so", want="migrate: database is up to date; nothing to apply", have=lines[-1])
    proof.check("one ledger row per file", want=sorted(f.name for f in files),
                have=[r[0] for r in ledger(empty_database.url)])


def test_dry_run_changes_nothing(empty_database: Database, proof: ProofRecord) -> None:
    lines: list[str] = []
    work = migrate.migrate(empty_database.url, dry_run=True, say=lines.append)
    proof.check("dry run lists every file", want=len(migrate.package_files()), have=len(work.files))
    proof.check("dry run names the first versioned file",
                want=True, have=any("tables/0001_outbox_attempt_state.sql" in line for line in lines))
    proof.check("dry run created no schema", want=False, have=schema_exists(empty_database.url))


def test_edited_applied_file_is_refused(empty_database: Database, sql_copy: Path, proof: ProofRecord) -> None:
    migrate.migrate(empty_database.url, say=lambda line: None, root=sql_copy)
    before = ledger(empty_database.url)
    edited = sql_copy / "tables" / "0002_participant_outbox_sequences.sql"
    edited.write_text(edited.read_text() + "\n-- an edit after release\n")
    with pytest.raises(migrate.MigrationError) as refused:
        migrate.migrate(empty_database.url, say=lambda line: None, root=sql_copy)
    proof.check("the refusal names the file", want=True,
                have="tables/0002_participant_outbox_sequences.sql" in str(refused.value))
    proof.check("nothing changed in the ledger", want=before, have=ledger(empty_database.url))


def test_crlf_line_endings_do_not_count_as_an_edit(empty_database: Database, sql_copy: Path,
                                                   proof: ProofRecord) -> None:
    migrate.migrate(empty_database.url, say=lambda line: None, root=sql_copy)
    path = sql_copy / "tables" / "0003_payment_outbox_pending.sql"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    work = migrate.migrate(empty_database.url, say=lambda line: None, root=sql_copy)
    proof.check("a file checked out with CRLF is the same file", want=0, have=len(work.files))


def test_a_server_below_the_minimum_is_refused_before_anything_changes(empty_database: Database,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      proof: ProofRecord) -> None:
    # No older server at hand: the minimum is raised above this real one, which migrate must then refuse.
    with psycopg.connect(empty_database.url) as conn:  # reads server_version_num (pg_settings) only
        version = conn.info.server_version
    monkeypatch.setattr(db, "MINIMUM_SERVER_VERSION", version + 1)
    with pytest.raises(db.UnsupportedServerError) as refused:
        migrate.migrate(empty_database.url, say=lambda line: None)
    proof.check("the refusal names the server's version", want=True,
                have=f"the server is PostgreSQL {version // 10000}." in str(refused.value))
    with psycopg.connect(empty_database.url) as conn:
        schemas = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'payment_outbox%'").fetchone()[0]
    proof.check("nothing was applied: no schema of the package", want=0, have=schemas)


def test_new_file_numbered_below_the_last_applied_is_refused(empty_database: Database, sql_copy: Path,
                                                             proof: ProofRecord) -> None:
    migrate.migrate(empty_database.url, say=lambda line: None, root=sql_copy)
    before = ledger(empty_database.url)
    (sql_copy / "tables" / "0000_too_early.sql").write_text("CREATE TABLE payment_outbox.too_early (x int);\n")
    with pytest.raises(migrate.MigrationError) as refused:
        migrate.migrate(empty_database.url, say=lambda line: None, root=sql_copy)
    proof.check("the refusal names the file", want=True, have="tables/0000_too_early.sql" in str(refused.value))
    proof.check("nothing changed in the ledger", want=before, have=ledger(empty_database.url))
    with psycopg.connect(empty_database.url) as conn:
        created = conn.execute("SELECT to_regclass('payment_outbox.too_early') IS NOT NULL").fetchone()[0]
    proof.check("the file was not applied", want=False, have=created)


def test_changed_repeatable_file_is_reapplied(empty_database: Database, sql_copy: Path, proof: ProofRecord) -> None:
    migrate.migrate(empty_database.url, say=lambda line: None, root=sql_copy)
    path = sql_copy / "functions" / "list_stuck_dispatching.sql"
    path.write_text(path.read_text().replace("the items the next repair cycle", "the items a repair cycle"))
    work = migrate.migrate(empty_database.url, say=lambda line: None, root=sql_copy)
    proof.check("only the changed function is re-applied", want=["functions/list_stuck_dispatching.sql"],
                have=[f.name for f in work.files])
    with psycopg.connect(empty_database.url) as conn:
        comment = conn.execute(
            "SELECT obj_description('payment_outbox.list_stuck_dispatching(integer)'::regprocedure, 'pg_proc')"
        ).fetchone()[0]
    proof.check("the new definition is live", want=True, have="the items a repair cycle" in comment)
    granted = _has_execute("outbox_readonly", "payment_outbox.list_stuck_dispatching(integer)", empty_database.url)
    proof.check("its grants are re-applied with it", want=True, have=granted)


def _has_execute(role: str, function: str, url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, function)).fetchone()[0]


def test_two_concurrent_runs_both_succeed(empty_database: Database, proof: ProofRecord) -> None:
    """Both runs are started while the test holds the migrate lock, and released together once
    the server shows both waiting on it: a real overlap, not a hoped-for one."""
    env = {**os.environ, "DATABASE_URL": empty_database.url}
    with psycopg.connect(empty_database.url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (migrate.LOCK_KEY,))
        runs = [subprocess.Popen([sys.executable, "-m", "runner.cli", "migrate"], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        waiting = _wait_for_lock_waiters(holder, want=2)
        holder.execute("SELECT pg_advisory_unlock(%s)", (migrate.LOCK_KEY,))
    outputs = [run.communicate(timeout=120) for run in runs]
    proof.check("both runs were waiting on the migrate lock at once", want=2, have=waiting)
    proof.check("both runs exit 0", want=[0, 0], have=[run.returncode for run in runs])
    applied_lines = [line for out, _ in outputs for line in out.splitlines() if "] applied " in line]
    files = migrate.package_files()
    proof.check("every file applied exactly once across both runs", want=sorted(f.name for f in files),
                have=sorted(line.split("] applied ")[1].split(" ")[0] for line in applied_lines))
    proof.check("one of the runs found nothing to do", want=1,
                have=sum("database is up to date" in out for out, _ in outputs))


def _wait_for_lock_waiters(conn: psycopg.Connection, want: int, timeout: float = 60.0) -> int:
    """Poll pg_locks until `want` backends wait on the migrate advisory lock (lock-wait detection)."""
    deadline = time.monotonic() + timeout
    query = """SELECT count(*) FROM pg_locks
               WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database
                                                                          WHERE datname = current_database())"""
    seen = 0
    while time.monotonic() < deadline:
        seen = conn.execute(query).fetchone()[0]
        if seen >= want:
            return seen
        time.sleep(0.02)
    return seen


def test_existing_roles_need_no_createrole(server: Server, proof: ProofRecord) -> None:
    """A DBA's owner role without CREATEROLE can migrate once the runtime roles exist."""
    suffix = f"{os.getpid()}_{time.monotonic_ns() % 10**9}"
    role, name = f"outbox_plain_owner_{suffix}", f"outbox_plain_{suffix}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOCREATEROLE NOCREATEDB").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(role)))
    try:
        url = server.database_url(name)
        plain_url = psycopg.conninfo.make_conninfo(url, user=role)
        with psycopg.connect(plain_url) as conn:
            can_create_role = conn.execute(
                "SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        work = migrate.migrate(plain_url, say=lambda line: None)
        proof.check("the migrating role has no CREATEROLE", want=False, have=can_create_role)
        proof.check("no role was missing", want=[], have=work.missing_roles)
        proof.check("every file applied", want=len(migrate.package_files()), have=len(work.files))
    finally:
        drop_database(server, name)
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_cli_without_database_url_says_what_to_set(proof: ProofRecord) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGDATABASE")}
    result = subprocess.run([sys.executable, "-m", "runner.cli", "migrate"], env=env, capture_output=True, text=True)
    proof.check("exit code", want=2, have=result.returncode)
    proof.check("the message names DATABASE_URL", want=True, have="DATABASE_URL is not set" in result.stderr)
