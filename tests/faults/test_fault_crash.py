"""Fault: the server crashes (pg_ctl stop -m immediate) in the middle of a mixed load, then restarts.

Ingesters, workers (some of whose claims go silent) and a repairer run against a cluster of the
proof's own; when the load has acknowledged enough enqueues, terminal completions and repairs,
the server is stopped in immediate mode (no checkpoint, no clean shutdown: a crash as far as the
data is concerned) and started again, which runs crash recovery. Then: every acknowledged enqueue
is present with its outbox id and sequence id; no item has two terminal attempts;
check_invariants() is empty; unknown-outcome enqueues are retried under the same key; after a
drain every item is terminal; and the history checker counts nothing lost, unexpected or
duplicated. The history and its counts go to reports/history/.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from runner.harness import history as history_mod
from runner.worker import Worker
from tests.conftest import Database, Server
from tests.helpers import api
from tests.helpers.fakerail import FakeRail
from tests.helpers.load import Load, enqueue_recorded, rail_policy, work_recorded
from tests.helpers.support import ProofRecord, role_connection
from tests.helpers.verdict import judge_history

pytestmark = pytest.mark.proof

CRASH_AFTER = {"enqueue_ok": 150, "terminal": 40, "repaired": 3}
DRAIN_SECONDS = 60


def terminal_per_item(url: str) -> Counter[str]:
    with role_connection(url, "outbox_auditor", name="auditor") as conn:
        return Counter(t.outbox_id for t in history_mod.read_terminal_attempts(conn))


def enqueues(history: history_mod.History, kind: str) -> list[tuple[dict, dict]]:
    return [(invoked, ended) for invoked, ended in history.completed("enqueue") if ended["type"] == kind]


def drain(url: str, history: history_mod.History, rail: FakeRail) -> int:
    """Requeue what the crash orphaned, then work until the queue is empty; the number of cycles.
    A RETRYABLE item is due only after its backoff (1 s here): then the loop waits for due work."""
    with history.operation("drain", "repair", {"threshold_seconds": 0}) as outcome:
        outcome.value = [[str(r["outbox_id"]), r["attempt_no"], r["new_state"]] for r in api.repair(url, 0)]
    deadline = time.monotonic() + DRAIN_SECONDS
    cycles = 0
    with Worker.connected(url, "drain") as worker:
        while time.monotonic() < deadline:
            cycles += 1
            work_recorded(history, worker, "drain", rail, 50, abandon=False)
            queue = api.queue(url)
            if queue["queue_depth"] == 0:
                return cycles
            if queue["due_now"] == 0:
                time.sleep(0.1)  # waiting for a backoff to expire, not for another thread
    raise AssertionError(f"the queue did not drain within {DRAIN_SECONDS} s: {api.queue(url)}")


def test_crash_in_the_middle_of_a_mixed_load(crashable_server: Server, crash_database: Database,
                                             proof: ProofRecord) -> None:
    url, cluster = crash_database.url, crashable_server.cluster
    assert cluster is not None
    history = history_mod.History(name="crash_in_the_middle_of_a_mixed_load")
    rail = FakeRail(decide=rail_policy)
    load = Load(url, history, rail, CRASH_AFTER)
    load.start(ingesters=2, workers=2)
    reached = load.enough.wait(timeout=120)
    cluster.stop_server("immediate")
    crashed_at = len(history.operations)
    still_running = load.join(timeout=60)
    cluster.start_server()
    restarted_at = api.server_clock(url)
    proof.observe(load_counts=dict(load.counts), thread_errors=load.errors, operations_at_crash=crashed_at)
    proof.check(f"the load reached {CRASH_AFTER} before the crash", want=True, have=reached)
    proof.check("every load thread stopped", want=[], have=still_running)
    proof.check("the restart ran crash recovery", want=True,
                have="automatic recovery in progress" in cluster.server_log())

    # Asked through the API, as a client would: an enqueue of a key returns the item the key holds.
    # A lost item would come back with a new outbox id and sequence id (and leave a sequence gap).
    acknowledged = enqueues(history, "ok")
    with role_connection(url, "outbox_ingest", name="after-restart") as conn:
        answers = [(invoked, ended, enqueue_recorded(history, conn, "after-restart", invoked["value"]))
                   for invoked, ended in acknowledged]
    identity = ("outbox_id", "sequence_id")
    proof.check("every acknowledged enqueue is present, same outbox id and sequence id", want=[], have=[
        (invoked["value"]["idempotency_key"], ended["value"], answer) for invoked, ended, answer in answers
        if [answer[k] for k in identity] != [ended["value"][k] for k in identity]])
    proof.check("no item has two terminal attempts after the crash", want={},
                have={k: n for k, n in terminal_per_item(url).items() if n > 1})
    proof.check("check_invariants() is empty after the restart", want=[], have=api.violations(url))

    unknown = {invoked["value"]["idempotency_key"]: invoked["value"] for invoked, _ in enqueues(history, "unknown")}
    with role_connection(url, "outbox_ingest", name="resolver") as conn:
        resolved = {key: enqueue_recorded(history, conn, "resolver", value) for key, value in unknown.items()}
    proof.observe(unknown_enqueues=len(unknown),
                  unknown_that_had_committed=sum(r["created_at"] < restarted_at for r in resolved.values()),
                  drain_cycles=drain(url, history, rail))

    per_key = rail.calls_per_key()
    proof.observe(rail_calls=sum(per_key.values()), keys_dispatched_more_than_once=sum(n > 1 for n in per_key.values()))
    proof.check("the queue is empty after the drain", want=0, have=api.queue(url)["queue_depth"])
    proof.check("no item has two terminal attempts after the drain", want={},
                have={k: n for k, n in terminal_per_item(url).items() if n > 1})
    proof.check("check_invariants() is empty after the drain", want=[], have=api.violations(url))
    judge_history(url, history, proof)
