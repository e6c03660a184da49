"""An enqueue of the previous release, open while `outbox migrate` brings in the key register (0006),
still leaves one item per key.

permutation old_begin_enqueue migrate(blocks) old_commit migrate(ends) retry

The database is at release point 0005 (tables 0001-0005 and that release's functions). A session
of that release opens a transaction and enqueues instr-1/key-1; `outbox migrate` starts and is
seen, with pg_blocking_pids(), waiting on that session; the session commits; migrate finishes.
A retry of key-1 must answer with the item the session created, and check_invariants() must be
empty. Before the runner locked the package tables ahead of 0006's copy of the keys, migrate
blocked only on 0006's ALTER TABLE, after the copy had missed the uncommitted key, and the retry
created a second item: a double payment.

Upgraded to the current package, tables/0010 registers such a missed key later in the same run,
so the first proof holds even without the runner's lock. The second stops the upgrade at release
point 0006, where nothing after 0006 can mend the register, and runs it twice: with the locks
sql/tables/locks.toml declares for 0006 (the runner's lock), the register holds the key; without
them (the snapshot as released has no locks.toml, as the runner before it had none), it misses
the key and the retry creates a second item. The second arm is the control: it shows that the
permutation reaches the hole, so the first arm's pass is the lock's doing.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from runner.client import Client, Enqueued, Role
from runner.harness import releases
from runner.schema import lockwait, migrate, package
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.lock_waits import wait_until_blocked
from tests.helpers.support import ProofRecord
from tests.helpers.upgrade import MIGRATE_APPLICATION_NAME, PAYLOAD, MigrateThread, backend_of, migrate_to
from tests.migrations.test_migrate import empty_database  # noqa: F401  (fixture)

pytestmark = pytest.mark.proof


def _enqueue_open_across_the_upgrade(url: str, proof: ProofRecord, **migrate_options: Any) -> Enqueued:
    """From release point 0005: old_begin_enqueue migrate(blocks) old_commit migrate(ends). Returns
    what the open session's enqueue answered."""
    migrate_to(url, releases.point("0005").root)
    with Client.connect(url, Role.INGEST, name="old-release/s1", autocommit=False) as old, \
            Client.connect(url, Role.READONLY, name="monitor") as monitor:
        created = old.enqueue("instr-1", "bank-a", "key-1", "sepa", PAYLOAD)  # BEGIN; enqueue; (open)
        run = MigrateThread(url, policy=lockwait.LockPolicy(timeout_seconds=120.0), **migrate_options)
        run.start()
        migrate_pid = backend_of(monitor.conn, MIGRATE_APPLICATION_NAME)
        waits = wait_until_blocked(monitor.conn, [migrate_pid], old.conn.info.backend_pid)
        proof.observe(migrate_waited_for=[(w.locktype, w.mode) for w in waits])
        old.conn.commit()
    run.join(120)
    proof.observe(migrate=run.lines)
    proof.check("migrate finished", want=(False, None), have=(run.is_alive(), run.error))
    return created


def test_enqueue_open_across_the_key_register_upgrade_leaves_one_item(empty_database: Database,  # noqa: F811
                                                                       proof: ProofRecord) -> None:
    url = empty_database.url
    created = _enqueue_open_across_the_upgrade(url, proof)
    with Client.connect(url, Role.INGEST, name="retry") as client:
        retried = client.enqueue("instr-1", "bank-a", "key-1", "sepa", PAYLOAD)
    proof.check("the retry of key-1 answers with the item the open session created",
                want=(str(created.outbox_id), 1), have=(str(retried.outbox_id), retried.sequence_id))
    proof.check("one item in the queue", want=1, have=api.queue(url)["queue_depth"])
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def release_0006(tmp_path: Path, *, runner_lock: bool) -> Path:
    """Release point 0006 as a root to migrate to: the snapshot as released (no tables/locks.toml),
    or with the current package's locks.toml beside its tables, which the runner then takes."""
    root = tmp_path / "sql-0006"
    shutil.copytree(releases.point("0006").root, root)
    if runner_lock:
        shutil.copyfile(package.sql_root() / migrate.LOCKS_FILE, root / migrate.LOCKS_FILE)
    return root


@pytest.mark.parametrize("runner_lock", [True, False], ids=["with-the-runners-lock", "without-it-the-control"])
def test_the_runners_lock_keeps_the_key_of_an_enqueue_open_across_0006(
        runner_lock: bool, empty_database: Database, tmp_path: Path, proof: ProofRecord) -> None:  # noqa: F811
    url = empty_database.url
    root = release_0006(tmp_path, runner_lock=runner_lock)
    declared = migrate.lock_declarations(root)
    proof.check("the runner takes 0006's declared locks exactly when the root declares them",
                want=runner_lock, have="tables/0006_payment_outbox_idempotency_keys.sql" in declared)
    created = _enqueue_open_across_the_upgrade(url, proof, root=root)
    missed = [(name, str(outbox_id), detail) for name, outbox_id, _, detail in api.violations(url)]
    proof.observe(violations_after_the_upgrade=missed)
    with Client.connect(url, Role.INGEST, name="retry") as client:
        retried = client.enqueue("instr-1", "bank-a", "key-1", "sepa", PAYLOAD)
    if runner_lock:
        proof.check("release 0006's check_invariants(): the register holds key-1, for its item", want=[], have=missed)
        proof.check("the retry of key-1 answers with the item the open session created",
                    want=(str(created.outbox_id), 1), have=(str(retried.outbox_id), retried.sequence_id))
        proof.check("one item in the queue", want=1, have=api.queue(url)["queue_depth"])
        return
    proof.check("control: release 0006's check_invariants() says the register misses key-1",
                want=[("key_not_registered_to_item", str(created.outbox_id),
                       "idempotency key key-1 of instruction instr-1 is registered to no item")], have=missed)
    proof.check("control: the retry of key-1 creates a second item (the double payment the lock prevents)",
                want=(True, 2), have=(retried.outbox_id != created.outbox_id, retried.sequence_id))
