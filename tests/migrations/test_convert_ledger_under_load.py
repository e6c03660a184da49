"""The ledger partitioned online (issue 15, item 2): a populated ledger converted while ingesters,
workers and repair run.

The database is migrated to the current package without the conversion (`outbox migrate
--no-convert-ledger`), and the ledger is bulk-loaded as an upgraded database would hold it:
OUTBOX_CONVERT_LEDGER_ROWS rows (two per finished item, each key registered and each
participant's allocator in step; 200,000 by default, 1,000,000 under `make prove`). The load of
the upgrade proofs runs; `outbox convert-ledger` runs meanwhile, its lock_timeout 2 s. A monitor
samples every client's lock waits from its own connection. Then: every seeded row is in the
ledger (now partitioned, the old table its partition payment_outbox_attempts_legacy), the load's
history checks out (nothing lost, duplicated or unexpected), check_invariants() is empty, no
client waited for a lock longer than the lock_timeout and a margin, and the catalog is a fresh
install's but for the old table as a partition.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict

import psycopg
import pytest
from psycopg import sql

from runner.db import first_row as db_row
from runner.harness import history as history_mod
from runner.schema import ledger_conversion, lockwait, migrate, package
from tests.conftest import Database, Server
from tests.faults.test_fault_crash import drain
from tests.helpers import api, catalog, partitions
from tests.helpers.lock_waits import waiting
from tests.helpers.support import ProofRecord, role_connection
from tests.helpers.upgrade import backend_of
from tests.helpers.verdict import judge_history
from tests.migrations.test_migrate import empty_database  # noqa: F401  (fixture)
from tests.migrations.test_upgrade_catalog import CURRENT, catalog_after
from tests.migrations.test_upgrade_under_load import (
    AFTER_UPGRADE,
    BEFORE_UPGRADE,
    STALE_COMPLETION,
    UpgradeLoad,
    failed_calls,
)

pytestmark = pytest.mark.proof

ROWS = int(os.environ.get("OUTBOX_CONVERT_LEDGER_ROWS", "200000"))
POLICY = lockwait.LockPolicy(timeout_seconds=2, retries=30, first_backoff_seconds=0.05, max_backoff_seconds=1)
# A client may wait for the conversion's ACCESS EXCLUSIVE request for at most its lock_timeout,
# then for the instant the swap holds it: the margin covers that instant and the sampling period.
WAIT_BOUND_SECONDS = POLICY.timeout_seconds + 1.5
CLIENTS = ("ingest-0", "ingest-1", "outbox worker worker-0", "outbox worker worker-1", "repair")

SEED_SQL = """
WITH registered AS (
    INSERT INTO payment_outbox.payment_outbox_idempotency_keys (
        instruction_id, idempotency_key, outbox_id, registered_at
    )
    SELECT 'conv-' || n, 'key-' || n, md5('conv-' || n)::uuid, now() - interval '40 days'
    FROM generate_series(1, %(items)s) AS n
)
INSERT INTO payment_outbox.payment_outbox_attempts (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload_sha256, item_created_at, attempt_no, state, claimed_at, completed_at, worker_id, latency_ms
)
SELECT md5('conv-' || n)::uuid, 'conv-' || n, 'conv-bank-' || (n - 1) %% 100, (n - 1) / 100 + 1, 'key-' || n, 'sepa',
       sha256(convert_to('conv-' || n, 'UTF8')), now() - interval '40 days', step.attempt_no,
       step.state::payment_outbox.outbox_attempt_state, now() - interval '40 days',
       CASE WHEN step.attempt_no = 2 THEN now() - interval '40 days' END, 'conv-worker',
       CASE WHEN step.attempt_no = 2 THEN 12.5 END
FROM generate_series(1, %(items)s) AS n
CROSS JOIN (VALUES (1, 'DISPATCHING'), (2, 'DISPATCHED')) AS step (attempt_no, state)
"""
ALLOCATORS_SQL = """
INSERT INTO payment_outbox.participant_outbox_sequences (participant_id, next_sequence_id)
SELECT a.participant_id, max(a.sequence_id) + 1
FROM payment_outbox.payment_outbox_attempts AS a
WHERE a.participant_id LIKE 'conv-bank-%%'
GROUP BY a.participant_id
"""


class WaitWatch(threading.Thread):
    """Samples the clients' lock waits; the longest unbroken wait of each, in seconds."""

    def __init__(self, url: str, pids: list[int]) -> None:
        super().__init__(name="wait-watch", daemon=True)
        self.url, self.pids = url, pids
        self.stop = threading.Event()
        self.longest: dict[int, float] = defaultdict(float)
        self.samples = 0

    def run(self) -> None:
        since: dict[int, float] = {}
        with role_connection(self.url, "outbox_readonly", name="convert-ledger/wait-watch") as monitor:
            while not self.stop.is_set():
                now = time.monotonic()
                waiting_now = {w.pid for w in waiting(monitor, self.pids)}
                for pid in waiting_now:
                    since.setdefault(pid, now)
                    self.longest[pid] = max(self.longest[pid], now - since[pid])
                for pid in set(since) - waiting_now:
                    del since[pid]
                self.samples += 1
                self.stop.wait(0.005)  # sampling period: bounds the monitor's CPU, synchronises nothing


def test_convert_a_populated_ledger_under_load(empty_database: Database, server: Server,  # noqa: F811
                                                proof: ProofRecord) -> None:
    url = empty_database.url
    migrate.migrate(url, say=lambda line: None, convert_ledger=False)
    with psycopg.connect(url, autocommit=True) as owner:
        for role in package.runtime_roles():  # the load acts as each runtime role (runner/clusters/scratch.py)
            owner.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))
        started = time.monotonic()
        owner.execute(SEED_SQL, {"items": ROWS // 2})
        owner.execute(ALLOCATORS_SQL)
        owner.execute("VACUUM ANALYZE payment_outbox.payment_outbox_attempts")
        seeded_in = round(time.monotonic() - started, 1)
    history = history_mod.History(name="convert_ledger_under_load")
    load = UpgradeLoad(url, history).start()
    lines: list[str] = []
    try:
        proof.check("the clients made progress before the conversion", want=True, have=load.wait_for(BEFORE_UPGRADE))
        with role_connection(url, "outbox_readonly", name="convert-ledger/monitor") as monitor:
            pids = [backend_of(monitor, name) for name in CLIENTS]
        watch = WaitWatch(url, pids)
        watch.start()
        started = time.monotonic()
        outcome = ledger_conversion.convert(url, say=lines.append, policy=POLICY)
        converted_in = round(time.monotonic() - started, 1)
        proof.check("the clients made progress on the partitioned ledger", want=True, have=load.wait_for(AFTER_UPGRADE))
        watch.stop.set()
        watch.join(30)
    finally:
        still_running = load.join()
    proof.observe(rows=ROWS, seeded_seconds=seeded_in, converted_seconds=converted_in, convert=lines,
                  counts=dict(load.counts), thread_errors=load.errors, wait_samples=watch.samples,
                  longest_client_waits={str(pid): round(s, 3) for pid, s in watch.longest.items()})
    proof.check("every thread stopped, none at an error", want=([], []), have=(still_running, load.errors))
    proof.check("the ledger was converted, the old table kept as a partition", want=(True, True),
                have=(outcome.converted, outcome.kept_rows))
    proof.check(f"no client waited for a lock longer than {WAIT_BOUND_SECONDS:g} s", want=[],
                have=[(pid, round(s, 3)) for pid, s in watch.longest.items() if s > WAIT_BOUND_SECONDS])

    proof.observe(drain_cycles=drain(url, history, load.rail))
    failed = failed_calls(history)
    proof.observe(failed_calls={f"{f} {s}": n for (f, s), n in failed.items()})
    proof.check("no call failed but stale completions after a repair", want=[],
                have=sorted(f"{f} {s}" for f, s in failed if (f, s) != ("complete", STALE_COMPLETION)))
    # The seeded history is checked by count below; the load's history against its own calls.
    judge_history(url, history, proof, keep=lambda t: not t.instruction_id.startswith("conv-"))
    with role_connection(url, "outbox_auditor", name="convert-ledger/auditor") as auditor:
        kept, through_ledger = db_row(auditor.execute(
            "SELECT count(*) FILTER (WHERE tableoid = to_regclass('payment_outbox.payment_outbox_attempts_legacy')), "
            "count(*) FROM payment_outbox.payment_outbox_attempts WHERE instruction_id LIKE 'conv-%'"))
    proof.check("every seeded row is in the partition the old table became, and read through the ledger",
                want=(ROWS, ROWS), have=(kept, through_ledger))
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
    proof.check("a second conversion finds nothing to do", want=False,
                have=ledger_conversion.convert(url, say=lambda line: None, policy=POLICY).converted)

    # Documented difference (docs/operations.md): the old table is one partition, of every item
    # created before its bound, in place of the fresh install's monthly partitions below the bound.
    documented = partitions.legacy_partition_names(url)
    fresh = catalog_after(server, [CURRENT])
    different = catalog.difference(catalog.snapshot(url), fresh)
    proof.observe(catalog_difference=different, months_the_old_table_covers=list(documented[1:]))
    proof.check("the catalog is a fresh install's but for the old table as the partition of the months before "
                "its bound", want=[], have=partitions.undocumented(different, documented))
