"""tables/0010 mends a database that was upgraded across tables/0006 while payments moved.

The damage is made as it was made: the database is at release point 0005, two sessions of that
release hold enqueues of key-1 and key-2 open, and migrate brings the database to release point
0008 as the runner did before tables/locks.toml (the snapshot has none), blocking on 0006's
ALTER TABLE after its copy missed both keys. Then key-2's item is dispatched (it leaves pending
for the ledger, unregistered), and a retry of key-1 creates a second item. Migrating to the
current package must register key-2 (a retry answers with its item) and report key-1, held by
two items, in payment_outbox_key_conflicts without choosing between them, while
check_invariants() goes on naming it.
"""

from __future__ import annotations

import pytest

from runner.client import Client, Role
from runner.harness import releases
from runner.schema import lockwait
from runner.worker import RailOutcome, Worker
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.lock_waits import wait_until_blocked
from tests.helpers.support import ProofRecord
from tests.helpers.upgrade import MIGRATE_APPLICATION_NAME, PAYLOAD, MigrateThread, backend_of, migrate_to
from tests.migrations.test_migrate import empty_database  # noqa: F401  (fixture)

pytestmark = pytest.mark.proof


def _upgrade_under_load_without_locks(url: str) -> dict[str, str]:
    """Release 0005 to 0008 with two enqueues open across 0006; returns key -> the item it created."""
    migrate_to(url, releases.point("0005").root)
    with Client.connect(url, Role.INGEST, name="old/s1", autocommit=False) as s1, \
            Client.connect(url, Role.INGEST, name="old/s2", autocommit=False) as s2, \
            Client.connect(url, Role.READONLY, name="monitor") as monitor:
        first = s1.enqueue("instr-1", "bank-a", "key-1", "sepa", PAYLOAD)
        second = s2.enqueue("instr-2", "bank-b", "key-2", "sepa", PAYLOAD)
        run = MigrateThread(url, root=releases.point("0008").root, policy=lockwait.LockPolicy(timeout_seconds=120))
        run.start()
        migrate_pid = backend_of(monitor.conn, MIGRATE_APPLICATION_NAME)
        wait_until_blocked(monitor.conn, [migrate_pid], s1.conn.info.backend_pid)
        s1.conn.commit()
        s2.conn.commit()
    run.join(120)
    assert not run.is_alive() and run.error is None, run.error
    return {"key-1": str(first.outbox_id), "key-2": str(second.outbox_id)}


def test_reconciliation_registers_missing_keys_and_reports_two_items(empty_database: Database,  # noqa: F811
                                                                      proof: ProofRecord) -> None:
    url = empty_database.url
    created = _upgrade_under_load_without_locks(url)
    # A worker of the release the database is at: no worker id in its completion.
    with Worker.connected(url, "worker-1", fenced_by_worker_id=False) as worker:  # claims both; key-1's stays in flight
        for item in worker.claim(10):
            if item.idempotency_key == "key-2":
                worker.complete(item, RailOutcome("DISPATCHED", rail_reference="rail-2"))
    with Client.connect(url, Role.INGEST, name="retry-before") as client:
        duplicate = str(client.enqueue("instr-1", "bank-a", "key-1", "sepa", PAYLOAD).outbox_id)
    damaged = sorted(row[0] for row in api.violations(url))
    proof.observe(damaged=damaged)
    proof.check("the old upgrade left key-1 held by two items", want=True, have="key_held_by_two_items" in damaged)

    migrate_to(url)
    with Client.connect(url, Role.INGEST, name="retry-after") as client:
        key_1 = str(client.enqueue("instr-1", "bank-a", "key-1", "sepa", PAYLOAD).outbox_id)
        key_2 = client.enqueue("instr-2", "bank-b", "key-2", "sepa", PAYLOAD)
    proof.check("key-2, missing from the register, is registered to its dispatched item",
                want=(created["key-2"], "DISPATCHED"), have=(str(key_2.outbox_id), key_2.state))
    proof.check("key-1 answers with the item the register already named", want=duplicate, have=key_1)
    with Client.connect(url, Role.AUDITOR, name="auditor") as client:
        conflicts = [(c.idempotency_key, str(c.outbox_id), c.item_state, c.registered)
                     for c in client.key_conflicts()]
    proof.check("both items of key-1 are reported, the register's named, none removed",
                want=[("key-1", created["key-1"], "DISPATCHING", False), ("key-1", duplicate, "PENDING", True)],
                have=conflicts)
    remaining = sorted((row[0], row[3]) for row in api.violations(url))
    proof.observe(remaining=remaining)
    proof.check("check_invariants() names key-1 and nothing about key-2",
                want=["key_held_by_two_items", "key_not_registered_to_item"],
                have=sorted({name for name, detail in remaining if "key-2" not in detail}))
    proof.check("nothing about key-2", want=[], have=[row for row in remaining if "key-2" in row[1]])
