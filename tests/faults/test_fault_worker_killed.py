"""Fault: a worker's backend is terminated after its claim and before its completion.

The claim has committed, the rail has been called, and the completion never arrives. Repair
requeues the item, the dead worker's late completion is refused (PO002), the next worker
dispatches it again under the same idempotency key, and the ledger ends with one terminal attempt.
"""

from __future__ import annotations

import psycopg
import pytest

from runner.worker import ClaimedItem, RailError, RailOutcome, Worker
from tests.conftest import Database, Server
from tests.helpers import api
from tests.helpers.fakerail import FakeRail
from tests.helpers.faults import terminate_backend
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof


def test_worker_killed_between_claim_and_completion(server: Server, clean_database: Database,
                                                    proof: ProofRecord) -> None:
    url = clean_database.url
    item = api.enqueue_once(url, "killed-1", "bank-k", "kill/1")
    terminated: list[bool] = []
    claimed_by_the_dead: list[ClaimedItem] = []

    with Worker.connected(url, "worker-killed") as doomed:
        def kill_my_worker(claimed: ClaimedItem) -> None:  # the fault, between claim and completion
            claimed_by_the_dead.append(claimed)
            terminated.append(terminate_backend(server.admin_url, doomed.backend_pid))

        rail = FakeRail(on_call=kill_my_worker)
        with pytest.raises(psycopg.OperationalError) as lost:
            doomed.run_once(rail, batch_size=5)
    proof.observe(worker_error=str(lost.value).splitlines()[0] if str(lost.value) else type(lost.value).__name__)
    proof.check("the worker's backend was terminated inside the rail call", want=[True], have=terminated)
    proof.check("the item is in flight under the dead worker's claim", want=[(item["outbox_id"], 1, "worker-killed")],
                have=api.queue(url)["in_flight_items"])
    proof.check("check_invariants() is empty with the claim orphaned", want=[], have=api.violations(url))

    repaired = api.repair(url, threshold_seconds=0)
    proof.check("repair requeues the item as attempt 2",
                want=[(item["outbox_id"], 2, "ZOMBIE_REQUEUE", "worker-killed")],
                have=[(r["outbox_id"], r["attempt_no"], r["new_state"], r["worker_id"]) for r in repaired])

    with Worker.connected(url, "worker-killed") as revenant:  # the dead worker comes back to complete
        late = revenant.complete(claimed_by_the_dead[0], RailOutcome("DISPATCHED"))
    proof.check("the dead worker's late completion of attempt 1 is refused (PO002): STALE",
                want=("STALE", 1), have=(late.state, late.item.attempt_no))
    proof.check("the refused completion wrote nothing", want=2, have=len(api.ledger(url)))

    with Worker.connected(url, "worker-next") as successor:
        done = successor.run_once(rail, batch_size=5)
    proof.check("the next worker dispatches and completes it", want=[("DISPATCHED", 4)],
                have=[(c.state, c.attempt_no) for c in done])
    rows = api.ledger(url)
    proof.check("the ledger: claim, requeue, claim, one terminal attempt", want=[
        (item["outbox_id"], 1, "DISPATCHING", "worker-killed", None),
        (item["outbox_id"], 2, "ZOMBIE_REQUEUE", "worker-killed", "ZOMBIE"),
        (item["outbox_id"], 3, "DISPATCHING", "worker-next", None),
        (item["outbox_id"], 4, "DISPATCHED", "worker-next", None),
    ], have=rows)
    proof.check("the rail saw the key twice (at least once towards the rail; it deduplicates by key)",
                want={"kill/1": 2}, have=dict(rail.calls_per_key()))
    proof.check("the key still answers with its one item, now DISPATCHED",
                want=(item["outbox_id"], item["sequence_id"], "DISPATCHED"),
                have=tuple(api.enqueue_once(url, "killed-1", "bank-k", "kill/1")[k]
                           for k in ("outbox_id", "sequence_id", "state")))
    proof.check("nothing left in the queue", want=0, have=api.queue(url)["queue_depth"])
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_rail_outcomes_reach_the_ledger(clean_database: Database, proof: ProofRecord) -> None:
    """The reference worker records what the rail says: DISPATCHED, FAILED (a RailError that is not
    retryable), RETRYABLE (any other exception: the payment may have gone out)."""
    url = clean_database.url
    for n in range(3):
        api.enqueue_once(url, f"outcome-{n}", "bank-o", f"outcome/{n}")

    def decide(claimed: ClaimedItem) -> RailOutcome:
        if claimed.idempotency_key == "outcome/1":
            raise RailError("account closed", code="AC04", retryable=False)
        if claimed.idempotency_key == "outcome/2":
            raise TimeoutError("rail did not answer")
        return RailOutcome("DISPATCHED", rail_reference="ref-0")

    with Worker.connected(url, "worker-outcomes") as worker:
        done = worker.run_once(FakeRail(decide=decide), batch_size=10)
    proof.check("each outcome as the ledger recorded it", want={
        "outcome/0": ("DISPATCHED", 2), "outcome/1": ("FAILED", 2), "outcome/2": ("RETRYABLE", 2)},
        have={c.item.idempotency_key: (c.state, c.attempt_no) for c in done})
    codes = {(state, code) for _, _, state, _, code in api.ledger(url) if state != "DISPATCHING"}
    proof.check("error codes recorded", want={("DISPATCHED", None), ("FAILED", "AC04"), ("RETRYABLE", "TimeoutError")},
                have=codes)
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
