"""The history-checked load on Citus: 24 participants, workers by bucket, repair with zombies.

Three ingesters enqueue new keys over 24 participants (spread over every bucket); three bucket
workers, each covering its own third of the buckets, claim, call a fake rail and complete, and go
silent on a fixed share of first claims (zombies); a repairer requeues with threshold 0, bucket by
bucket, each time a worker went silent. Then a drain over every bucket, and the checks: the
history (runner/harness/history.py: 0 lost, 0 duplicated, 0 unexpected, 0 identity changes,
0 lost completions), check_invariants() empty, and checked directly: every participant's sequence
ids 1..n without a gap, attempt numbers 1..n per item, one terminal attempt per item, nothing left
in the queue.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from runner.client import Client
from runner.harness import history as hist
from runner.worker import RailOutcome
from runner.worker.bucket import BucketWorker
from tests.citus.conftest import Citus
from tests.helpers.citus_buckets import participants_per_bucket
from tests.helpers.fakerail import FakeRail
from tests.helpers.load import rail_policy, work_recorded

PARTICIPANTS = 24
ITEMS = 720  # enqueues acknowledged before the load stops
DRAIN_SECONDS = 120
REPORTS = Path(__file__).resolve().parents[2] / "reports" / "history"


class CitusLoad:
    def __init__(self, citus: Citus, history: hist.History, participants: list[str], bucket_keys: list[str]) -> None:
        self.citus, self.history, self.participants, self.bucket_keys = citus, history, participants, bucket_keys
        self.rail = FakeRail(rail_policy)
        self.stop = threading.Event()
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._abandoned = threading.Semaphore(0)

    def run(self, ingesters: int = 3, workers: int = 3) -> None:
        threads = [threading.Thread(target=self._guard, args=(self._ingest, f"ingest-{n}", n, ingesters))
                   for n in range(ingesters)]
        threads += [threading.Thread(target=self._guard, args=(self._work, f"worker-{n}", n, workers))
                    for n in range(workers)]
        threads.append(threading.Thread(target=self._guard, args=(self._repair, "repair", 0, 1)))
        for thread in threads:
            thread.start()
        for thread in threads[:ingesters]:
            thread.join(300)
        self.stop.set()
        for thread in threads:
            thread.join(120)
        assert not [t.name for t in threads if t.is_alive()], "a load thread did not stop"

    def _guard(self, target: Any, process: str, n: int, of: int) -> None:
        try:
            target(process, n, of)
        except psycopg.Error as exc:
            with self._lock:
                self.errors.append(f"{process}: {exc.sqlstate}: {exc}")

    def _ingest(self, process: str, n: int, of: int) -> None:
        with Client.connect(self.citus.url("ingest"), None, name=process) as client:
            for i in itertools.count(n, of):
                if i >= ITEMS:
                    return
                value: dict[str, Any] = {
                    "instruction_id": f"instr-{i}", "idempotency_key": f"{process}/{i}",
                    "participant_id": self.participants[i % len(self.participants)],
                    "payload": {"n": i, "by": process}}
                with self.history.operation(process, "enqueue", value) as outcome:
                    row = client.enqueue(value["instruction_id"], value["participant_id"], value["idempotency_key"],
                                         "SEPA", value["payload"])
                    outcome.value = {"outbox_id": str(row.outbox_id), "sequence_id": row.sequence_id,
                                     "state": row.state}

    def _work(self, process: str, n: int, of: int) -> None:
        mine = self.bucket_keys[n::of]
        with BucketWorker.connected_to(self.citus.url("executor"), process, mine) as worker:
            while not self.stop.is_set():
                terminal, abandoned = work_recorded(self.history, worker, process, self.rail, 4, abandon=True)
                for _ in range(abandoned):
                    self._abandoned.release()
                with self._lock:
                    self.counts["terminal"] += terminal
                    self.counts["abandoned"] += abandoned

    def _repair(self, process: str, n: int, of: int) -> None:
        with Client.connect(self.citus.url("repair"), None, name=process) as client:
            while not self.stop.is_set():
                if not self._abandoned.acquire(timeout=0.05):
                    continue
                for key in self.bucket_keys:
                    with self.history.operation(process, "repair", {"bucket_key": key, "threshold_seconds": 0}) as out:
                        rows = client.repair_bucket(key, 0, 50)
                        out.value = [[str(r.outbox_id), r.attempt_no, r.new_state] for r in rows]
                    with self._lock:
                        self.counts["repaired"] += len(rows)


def drain(citus: Citus, history: hist.History, rail: FakeRail, bucket_keys: list[str],
          participants: list[str]) -> int:
    """Requeue what the load left claimed, then work every bucket until the participants' queue is
    empty; the number of cycles. A RETRYABLE item is due only after its backoff (1 s here): then the
    loop waits for due work, as tests/faults/test_fault_crash.py's drain does."""
    deadline = time.monotonic() + DRAIN_SECONDS
    cycles = 0
    with Client.connect(citus.url("repair"), None, name="drain-repair") as repair, \
            BucketWorker.connected_to(citus.url("executor"), "drain", bucket_keys) as worker, \
            psycopg.connect(citus.owner_url, autocommit=True) as owner:
        for key in bucket_keys:
            with history.operation("drain", "repair", {"bucket_key": key, "threshold_seconds": 0}) as out:
                out.value = [[str(r.outbox_id), r.attempt_no, r.new_state] for r in repair.repair_bucket(key, 0, 500)]
        while time.monotonic() < deadline:
            cycles += 1
            work_recorded(history, worker, "drain", rail, 50, abandon=False)
            if worker.last_bucket is not None:
                continue
            depth, due = owner.execute(  # type: ignore[misc]
                "SELECT count(*), count(*) FILTER (WHERE next_attempt_at <= now()) "
                "FROM payment_outbox.payment_outbox_pending WHERE participant_id = ANY(%s)",
                (participants,)).fetchone()
            if depth == 0:
                return cycles
            if due == 0:
                time.sleep(0.1)  # waiting for a backoff to expire, not for another thread
    raise AssertionError(f"the queue did not drain within {DRAIN_SECONDS} s")


def terminal_attempts(citus: Citus, participants: list[str]) -> list[hist.TerminalAttempt]:
    """The terminal attempts of the run's participants, read as outbox_auditor (the ledger's reader)."""
    with psycopg.connect(citus.url("auditor")) as conn:
        rows = conn.execute(
            "SELECT outbox_id, instruction_id, idempotency_key, attempt_no, state::text "
            "FROM payment_outbox.payment_outbox_attempts "
            "WHERE state IN ('DISPATCHED', 'FAILED') AND participant_id = ANY(%s)", (participants,)).fetchall()
    return [hist.TerminalAttempt(str(o), i, k, n, s) for o, i, k, n, s in rows]


def test_history_checked_load_over_24_participants(citus: Citus, run_id: str) -> None:
    with Client.connect(citus.url("executor"), None) as executor:
        bucket_keys = [b.bucket_key for b in executor.buckets()]
    with psycopg.connect(citus.owner_url) as conn:  # reads pg_dist_shard only (the shards participants hash to)
        chosen = participants_per_bucket(conn, f"load-{run_id}", PARTICIPANTS // len(bucket_keys), len(bucket_keys))
        participants = [p for bucket in sorted(chosen) for p in chosen[bucket]]
        spread = conn.execute(
            "SELECT count(DISTINCT get_shard_id_for_distribution_column('payment_outbox.payment_outbox_pending', p)) "
            "FROM unnest(%s::text[]) AS p", (participants,)).fetchone()[0]
    assert len(participants) == PARTICIPANTS and spread == len(bucket_keys), f"{spread} of {len(bucket_keys)} buckets"

    # The session's other proofs may leave items due; the load's workers cover every bucket and
    # would complete them inside this history. Settled first, outside it: the load starts on an
    # empty queue.
    with BucketWorker.connected_to(citus.url("executor"), f"settle-{run_id}", bucket_keys) as settle:
        while items := settle.claim(100):
            for item in items:
                settle.complete(item, RailOutcome("DISPATCHED"))
    with psycopg.connect(citus.owner_url) as conn:
        waiting = conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_pending").fetchone()
    assert waiting == (0,), f"items left by other proofs, not due: {waiting}"

    history = hist.History(f"citus-load-{run_id}")
    load = CitusLoad(citus, history, participants, bucket_keys)
    load.run()
    assert not load.errors, load.errors
    assert load.counts["abandoned"] > 0 and load.counts["repaired"] > 0, load.counts
    drain(citus, history, load.rail, bucket_keys, participants)

    verdict = hist.check(history, terminal_attempts(citus, participants))
    hist.write(history, verdict, REPORTS)
    if not verdict.valid:
        named = sorted({str(row[0]) for kind in ("lost", "lost_completions", "duplicated")
                        for row in verdict.details[kind] if isinstance(row[0], str)})
        with psycopg.connect(citus.owner_url) as conn:
            rows = conn.execute(
                "SELECT outbox_id, attempt_no, state::text, worker_id, claimed_at, completed_at "
                "FROM payment_outbox.payment_outbox_attempts WHERE outbox_id = ANY(%s::uuid[]) "
                "ORDER BY outbox_id, attempt_no", (named,)).fetchall()
        raise AssertionError(f"{verdict.line(history.name)}; {verdict.details}; ledger rows of those items: {rows}")
    assert verdict.counts["acknowledged"] == ITEMS

    with psycopg.connect(citus.owner_url) as conn:
        gaps = conn.execute(
            "SELECT participant_id, count(DISTINCT sequence_id), max(sequence_id) "
            "FROM payment_outbox.payment_outbox_attempts WHERE participant_id = ANY(%s) "
            "GROUP BY participant_id HAVING count(DISTINCT sequence_id) <> max(sequence_id)",
            (participants,)).fetchall()
        items = conn.execute(
            "SELECT count(DISTINCT (participant_id, sequence_id)) FROM payment_outbox.payment_outbox_attempts "
            "WHERE participant_id = ANY(%s)", (participants,)).fetchone()[0]
        attempt_gaps = conn.execute(
            "SELECT outbox_id FROM payment_outbox.payment_outbox_attempts WHERE participant_id = ANY(%s) "
            "GROUP BY participant_id, outbox_id "
            "HAVING count(*) <> max(attempt_no) OR count(*) FILTER (WHERE state IN ('DISPATCHED', 'FAILED')) <> 1",
            (participants,)).fetchall()
        allocators = conn.execute(
            "SELECT s.participant_id FROM payment_outbox.participant_outbox_sequences AS s "
            "WHERE s.participant_id = ANY(%s) AND s.next_sequence_id - 1 <> ("
            "  SELECT count(*) FROM payment_outbox.payment_outbox_idempotency_keys AS k "
            "  WHERE k.participant_id = s.participant_id)", (participants,)).fetchall()
        left = conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_pending WHERE participant_id = ANY(%s)",
                            (participants,)).fetchone()[0]
    with Client.connect(citus.url("auditor"), None) as auditor:
        violations = [v for v in auditor.check_invariants_by_bucket()
                      if v.participant_id in participants or v.participant_id is None]
    assert violations == [], f"check_invariants(): {violations[:5]}"
    assert gaps == [], f"sequence gaps: {gaps}"
    assert items == ITEMS
    assert attempt_gaps == [], f"items whose attempts are not 1..n with one terminal: {attempt_gaps[:5]}"
    assert allocators == [], f"allocators that do not match their registered keys: {allocators}"
    assert left == 0
