"""Companions of the Phase 4 proof: fencing after a requeue, live and terminal work left alone, the
maximum attempt count, and two repair cycles at once. Seeds are written as the owner; everything
else runs as a runtime role, the repair through `outbox repair` or through runner.operator.repair itself."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from runner.client import Client, Role
from runner.operator import repair
from tests.conftest import Database
from tests.helpers import api, zombies
from tests.helpers.support import ProofRecord, role_connection, sqlstate_of

pytestmark = pytest.mark.proof


def run_id() -> str:
    return uuid.uuid4().hex[:12]


def enqueue_and_claim(url: str, key: str, worker: str) -> tuple[str, int]:
    """A live claim made now through the API: (outbox_id, attempt_no)."""
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        outbox_id = client.enqueue(f"instr-{key}", "bank-live", key, "sepa", {"key": key}).outbox_id
    with Client.connect(url, Role.EXECUTOR, name=worker) as client:
        claimed = client.claim(worker, 1)
    assert [c.outbox_id for c in claimed] == [outbox_id], f"claim: have {claimed}, want {outbox_id}"
    return str(outbox_id), claimed[0].attempt_no


def complete(url: str, outbox_id: str, attempt_no: int, worker: str, state: str = "DISPATCHED") -> list[Any]:
    """As `worker`, the worker that claimed the attempt."""
    with Client.connect(url, Role.EXECUTOR, name=worker) as client:
        completed = client.complete(outbox_id, attempt_no, state, worker_id=worker)
    return [completed.attempt_no, completed.state]


def test_requeued_zombie_is_fenced_and_a_fresh_claim_completes(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    item = zombies.seed_stale_claim(url, run_id())
    repaired = zombies.run_repair(url)
    proof.check("repair requeued the zombie as attempt 2", want=[(2, "ZOMBIE_REQUEUE")],
                have=[(line["attempt_no"], line["new_state"]) for line in repaired.items(item.outbox_id)])
    ledger_after_repair = zombies.ledger(url, item.outbox_id)

    def late_completion() -> None:
        complete(url, item.outbox_id, item.attempt_no, item.worker_id)
    proof.check("the zombie's own completion is refused as stale", want="PO002", have=sqlstate_of(late_completion))
    proof.check("the refused completion wrote nothing", want=ledger_after_repair,
                have=zombies.ledger(url, item.outbox_id))

    with Client.connect(url, Role.EXECUTOR, name="fresh worker") as client:
        fresh = client.claim("fresh", 10)
    proof.check("a fresh claim gets attempt_no = last + 1", want=[(item.outbox_id, 3)],
                have=[(str(f.outbox_id), f.attempt_no) for f in fresh])
    proof.check("the fresh claim completes", want=[4, "DISPATCHED"], have=complete(url, item.outbox_id, 3, "fresh"))
    final = zombies.ledger(url, item.outbox_id)
    proof.check("the whole history", want=[(1, "DISPATCHING"), (2, "ZOMBIE_REQUEUE"), (3, "DISPATCHING"),
                                           (4, "DISPATCHED")], have=[(n, s) for n, s, _ in final])
    proof.check("exactly one terminal attempt", want=1,
                have=sum(1 for _, state, _ in final if state in ("DISPATCHED", "FAILED")))
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_young_claim_is_untouched_while_an_old_one_is_requeued(clean_database: Database, proof: ProofRecord) -> None:
    """Threshold one hour: the seeded claim is two hours old, the live claim was made just now, so no
    timing can put the live one over the threshold."""
    url = clean_database.url
    old = zombies.seed_stale_claim(url, run_id(), claimed_seconds_ago=7200)
    young_id, young_attempt = enqueue_and_claim(url, f"young-{run_id()}", "live-worker")
    young_before = zombies.ledger(url, young_id)
    repaired = zombies.run_repair(url, threshold="3600")
    proof.check("exit 0", want=0, have=repaired.returncode)
    proof.check("the old claim is requeued", want=["ZOMBIE_REQUEUE"],
                have=[line["new_state"] for line in repaired.items(old.outbox_id)])
    proof.check("no line for the young claim", want=[], have=repaired.items(young_id))
    proof.check("the young claim's ledger is unchanged", want=young_before, have=zombies.ledger(url, young_id))
    proof.check("the young claim is still in flight", want=[(young_id, young_attempt, "live-worker")],
                have=api.stuck(url, 0))
    proof.check("its worker still completes it", want=[young_attempt + 1, "DISPATCHED"],
                have=complete(url, young_id, young_attempt, "live-worker"))
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_terminal_items_are_never_requeued(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    done_id, attempt = enqueue_and_claim(url, f"done-{run_id()}", "w1")
    complete(url, done_id, attempt, "w1", "DISPATCHED")
    failed_id, attempt = enqueue_and_claim(url, f"failed-{run_id()}", "w2")
    complete(url, failed_id, attempt, "w2", "FAILED")
    before = {oid: zombies.ledger(url, oid) for oid in (done_id, failed_id)}
    repaired = zombies.run_repair(url, threshold="0")  # every claim, however young, would qualify
    proof.check("exit 0", want=0, have=repaired.returncode)
    proof.check("no log line for a terminal item", want=[], have=repaired.items(done_id) + repaired.items(failed_id))
    proof.check("nothing requeued", want=[0], have=[s["zombies_requeued"] for s in repaired.events("repair_cycle")])
    proof.check("terminal ledgers unchanged", want=before,
                have={oid: zombies.ledger(url, oid) for oid in (done_id, failed_id)})


def test_zombie_at_the_maximum_attempt_count_is_quarantined(clean_database: Database, proof: ProofRecord) -> None:
    """Default maximum 20: attempt 19's zombie would need attempt 20, so it becomes QUARANTINED (its
    payment may have gone out: never FAILED by repair; until issue 16 this proof expected FAILED);
    attempt 17's zombie becomes attempt 18 and is requeued."""
    url = clean_database.url
    last = zombies.seed_stale_claim(url, run_id(), attempt_no=19)
    below = zombies.seed_stale_claim(url, run_id(), attempt_no=17)
    repaired = zombies.run_repair(url)
    proof.observe(stdout=repaired.lines)
    proof.check("attempt 19's zombie: one QUARANTINED line",
                want=[("zombie_quarantined", 20, "QUARANTINED", last.worker_id)],
                have=[(x["event"], x["attempt_no"], x["new_state"], x["worker_id"])
                      for x in repaired.items(last.outbox_id)])
    proof.check("attempt 17's zombie: requeued as 18", want=[("zombie_requeued", 18, "ZOMBIE_REQUEUE")],
                have=[(x["event"], x["attempt_no"], x["new_state"]) for x in repaired.items(below.outbox_id)])
    proof.check("summary counts one requeued, one quarantined, none failed", want=[(1, 1, 0)],
                have=[(s["zombies_requeued"], s["zombies_quarantined"], s["zombies_failed"])
                      for s in repaired.events("repair_cycle")])
    proof.check("the quarantined item's ledger ends QUARANTINED at 20, with the silent worker",
                want=(20, "QUARANTINED", last.worker_id), have=zombies.ledger(url, last.outbox_id)[-1])
    proof.check("no FAILED row for either", want=[],
                have=[r for oid in (last.outbox_id, below.outbox_id) for r in zombies.ledger(url, oid)
                      if r[1] == "FAILED"])
    proof.check("both are left in the queue: the requeued one due, the quarantined one not",
                want={"queue_depth": 2, "due_now": 1, "in_flight": 0}, have=zombies.queue(url))
    with Client.connect(url, Role.OPERATOR, name="operator") as client:
        listed = [(str(q.outbox_id), q.attempt_count, q.quarantine_reason.startswith("outcome unknown: DISPATCHING "
                                                                                       "attempt 19 had no completion"))
                  for q in client.quarantined()]
    proof.check("listed as quarantined, with why", want=[(last.outbox_id, 20, True)], have=listed)
    with Client.connect(url, Role.EXECUTOR, name="claimer") as client:
        proof.check("a claim takes only the requeued item", want=[below.outbox_id],
                    have=[str(c.outbox_id) for c in client.claim("claimer", 10)])
    again = zombies.run_repair(url, threshold="0")
    proof.check("a second cycle writes nothing for the quarantined one", want=[], have=again.items(last.outbox_id))
    proof.check("the quarantined item's ledger still ends at 20", want=20,
                have=len(zombies.ledger(url, last.outbox_id)))
    with Client.connect(url, Role.OPERATOR, name="operator") as client:
        release = client.release_quarantined(last.outbox_id, reason="rail: no payment for the key", actor="alice")
    proof.check("the operator releases it as attempt 21", want=(21, "RELEASED"),
                have=(release.attempt_no, release.state))
    with Client.connect(url, Role.EXECUTOR, name="claimer") as client:
        proof.check("claimed again as attempt 22, with a fresh budget", want=[(last.outbox_id, 22)],
                    have=[(str(c.outbox_id), c.attempt_no) for c in client.claim("claimer", 10)])
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_two_cycles_started_together_requeue_each_zombie_once(clean_database: Database, proof: ProofRecord) -> None:
    """Sessions s1 and s2, each an outbox_repair connection, released by one barrier into
    runner.operator.repair.run_cycle with batch size 1, so they take turns through twelve zombies."""
    url = clean_database.url
    seeded = [zombies.seed_stale_claim(url, run_id()) for _ in range(12)]
    barrier = threading.Barrier(2, timeout=30)
    lines: dict[str, list[dict[str, Any]]] = {"s1": [], "s2": []}
    errors: list[BaseException] = []

    def session(name: str) -> None:
        try:
            with role_connection(url, Role.REPAIR, name=name) as conn:
                barrier.wait()
                repair.run_cycle(conn, 1, emit=lines[name].append, batch_size=1)
        except BaseException as exc:  # noqa: BLE001 - reported below with have/want
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(name,)) for name in lines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    proof.check("both sessions finished without error", want=[], have=[repr(e) for e in errors])
    requeued = [x["outbox_id"] for name in lines for x in lines[name] if x["event"] == "zombie_requeued"]
    proof.observe(per_session={name: sum(1 for x in lines[name] if x["event"] == "zombie_requeued") for name in lines})
    proof.check("each zombie logged exactly once across both sessions", want=sorted(s.outbox_id for s in seeded),
                have=sorted(requeued))
    proof.check("each zombie's ledger has exactly one ZOMBIE_REQUEUE",
                want={s.outbox_id: [(1, "DISPATCHING"), (2, "ZOMBIE_REQUEUE")] for s in seeded},
                have={s.outbox_id: [(n, st) for n, st, _ in zombies.ledger(url, s.outbox_id)] for s in seeded})
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_a_repair_holding_zombies_is_skipped_not_waited_for(clean_database: Database, proof: ProofRecord) -> None:
    """permutation s1_repair s2_repair s1_commit s2_repair: s2 never waits on s1's locks and never
    takes s1's zombies, before or after s1 commits."""
    url = clean_database.url
    item = zombies.seed_stale_claim(url, run_id())
    with Client.connect(url, Role.REPAIR, name="s1", autocommit=False) as s1, \
            Client.connect(url, Role.REPAIR, name="s2", autocommit=False) as s2:
        s2.conn.execute("SET lock_timeout = '5s'")  # a wait would be a failure, not a hang
        s2.conn.commit()
        s1_rows = s1.repair(1)
        s2_rows = s2.repair(1)
        s2.conn.commit()
        s1.conn.commit()
        s2_after = s2.repair(1)
        s2.conn.commit()
    proof.check("s1_repair takes the zombie", want=[item.outbox_id], have=[str(r.outbox_id) for r in s1_rows])
    proof.check("s2_repair, while s1 holds it, skips it", want=[], have=s2_rows)
    proof.check("s2_repair after s1_commit finds nothing left", want=[], have=s2_after)
    proof.check("one ZOMBIE_REQUEUE", want=[(1, "DISPATCHING"), (2, "ZOMBIE_REQUEUE")],
                have=[(n, s) for n, s, _ in zombies.ledger(url, item.outbox_id)])
