"""`outbox migrate` never waits on a lock longer than its lock timeout: it rolls back, says what it
waited for, retries with backoff, and gives up with nothing applied.

The database is at release point 0009, the latest; the run applies tables/0010, which locks the key
register against writes first. An ingest session holds an enqueue open, so the register is held.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from runner.client import Client, Role
from runner.harness import releases
from runner.schema import lockwait, migrate, package
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.support import ProofRecord
from tests.helpers.upgrade import migrate_to
from tests.migrations.test_migrate import empty_database, ledger  # noqa: F401  (fixture)

pytestmark = pytest.mark.proof

REGISTER = "payment_outbox.payment_outbox_idempotency_keys"


def test_gives_up_naming_the_blocker_and_applies_nothing(empty_database: Database,  # noqa: F811
                                                         proof: ProofRecord) -> None:
    url = empty_database.url
    migrate_to(url, releases.point("0009").root)
    before = ledger(url)
    with Client.connect(url, Role.INGEST, name="open-enqueue", autocommit=False) as blocker:
        blocker.enqueue("instr-1", "bank-a", "key-1", "sepa", {"key": "key-1"})
        env = {**os.environ, "DATABASE_URL": url, lockwait.TIMEOUT_VARIABLE: "1", lockwait.RETRIES_VARIABLE: "1"}
        result = subprocess.run([sys.executable, "-m", "runner.cli", "migrate"], env=env, capture_output=True,
                                text=True, timeout=120)
        proof.observe(stdout=result.stdout, stderr=result.stderr)
        proof.check("exit code 3: gave up waiting for locks", want=3, have=result.returncode)
        proof.check("one retry, announced with what the run waited for", want=1,
                    have=result.stdout.count(f"lock_timeout (SQLSTATE 55P03) after waiting for "
                                             f"ShareRowExclusiveLock on {REGISTER}"))
        proof.check("the message names the blocking backend and says nothing was applied", want=(True, True, True),
                    have=(f"pid {blocker.conn.info.backend_pid} 'open-enqueue'" in result.stderr,
                          "gave up after 2 attempt(s)" in result.stderr,
                          "Nothing of this run was applied" in result.stderr))
        proof.check("the ledger is as it was", want=before, have=ledger(url))
        blocker.conn.rollback()
    work = migrate.migrate(url, say=lambda line: None)
    proof.check("once the blocker ended, a run applies 0010", want=True,
                have="tables/0010_payment_outbox_key_conflicts.sql" in [f.name for f in work.files])


def test_retries_once_the_blocker_is_gone(empty_database: Database, proof: ProofRecord) -> None:  # noqa: F811
    """The blocker commits when the run announces its first retry: the second attempt applies."""
    url = empty_database.url
    migrate_to(url, releases.point("0009").root)
    lines: list[str] = []
    with Client.connect(url, Role.INGEST, name="open-enqueue", autocommit=False) as blocker:
        created = blocker.enqueue("instr-1", "bank-a", "key-1", "sepa", {"key": "key-1"})
        blocker_pid = blocker.conn.info.backend_pid

        def say(line: str) -> None:
            lines.append(line)
            if "retry 1/" in line:
                blocker.conn.commit()

        policy = lockwait.LockPolicy(timeout_seconds=1.0, retries=3, first_backoff_seconds=0.01)
        work = migrate.migrate(url, say=say, policy=policy)
    retries = [line for line in lines if "retry " in line]
    proof.observe(lines=lines)
    proof.check("one retry, after waiting for the register behind the open enqueue", want=1,
                have=sum(f"ShareRowExclusiveLock on {REGISTER}, behind pid {blocker_pid}" in line
                         for line in retries))
    proof.check("the second attempt applied 0010 and the functions", want=True,
                have="tables/0010_payment_outbox_key_conflicts.sql" in [f.name for f in work.files])
    with Client.connect(url, Role.INGEST, name="retry") as client:
        again = client.enqueue("instr-1", "bank-a", "key-1", "sepa", {"key": "key-1"})
    proof.check("the enqueue that waited out the run keeps its item", want=created.outbox_id,
                have=again.outbox_id)
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_the_run_is_one_transaction(empty_database: Database, tmp_path: Path,  # noqa: F811
                                    proof: ProofRecord) -> None:
    """A function file that fails leaves nothing of the run applied, not the versioned files before it."""
    url = empty_database.url
    migrate_to(url, releases.point("0007").root)
    before = ledger(url)
    root = tmp_path / "sql"
    shutil.copytree(package.sql_root(), root)
    (root / "functions" / "zz_fails.sql").write_text("-- fails\nSELECT 1 / 0;\n")
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate.migrate(url, say=lambda line: None, root=root)
    proof.check("the ledger is as it was", want=before, have=ledger(url))
    with psycopg.connect(url) as conn:
        reloptions = conn.execute("SELECT reloptions FROM pg_class "
                                  "WHERE oid = 'payment_outbox.payment_outbox_pending'::regclass").fetchone()[0]
    proof.check("0008's reloptions are not on pending", want=None, have=reloptions)
