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
"""

from __future__ import annotations

import pytest

from runner import lockwait, releases
from runner.client import Client, Role
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.lock_waits import wait_until_blocked
from tests.helpers.support import ProofRecord
from tests.helpers.upgrade import MIGRATE_APPLICATION_NAME, PAYLOAD, MigrateThread, backend_of, migrate_to
from tests.migrations.test_migrate import empty_database  # noqa: F401  (fixture)

pytestmark = pytest.mark.proof


def test_enqueue_open_across_the_key_register_upgrade_leaves_one_item(empty_database: Database,  # noqa: F811
                                                                       proof: ProofRecord) -> None:
    url = empty_database.url
    migrate_to(url, releases.point("0005").root)
    with Client.connect(url, Role.INGEST, name="old-release/s1", autocommit=False) as old, \
            Client.connect(url, Role.READONLY, name="monitor") as monitor:
        created = old.enqueue("instr-1", "bank-a", "key-1", "sepa", PAYLOAD)  # BEGIN; enqueue; (open)
        run = MigrateThread(url, policy=lockwait.LockPolicy(timeout_seconds=120.0))
        run.start()
        migrate_pid = backend_of(monitor.conn, MIGRATE_APPLICATION_NAME)
        waits = wait_until_blocked(monitor.conn, [migrate_pid], old.conn.info.backend_pid)
        proof.observe(migrate_waited_for=[(w.locktype, w.mode) for w in waits])
        old.conn.commit()
    run.join(120)
    proof.check("migrate finished", want=(False, None), have=(run.is_alive(), run.error))
    with Client.connect(url, Role.INGEST, name="retry") as client:
        retried = client.enqueue("instr-1", "bank-a", "key-1", "sepa", PAYLOAD)
    proof.check("the retry of key-1 answers with the item the open session created",
                want=(str(created.outbox_id), 1), have=(str(retried.outbox_id), retried.sequence_id))
    proof.check("one item in the queue", want=1, have=api.queue(url)["queue_depth"])
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
