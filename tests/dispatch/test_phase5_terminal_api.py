"""Phase 5, proof 4: one completion per claim, through the API.

One item is claimed (attempt 1). N sessions as outbox_executor, released together, each call
complete_outbox_attempt for that same attempt, half asking DISPATCHED and half FAILED (duplicate
workers, a retried completion, a confused operator):

    permutation  s00_complete s01_complete ... s31_complete   (all at once)

Exactly one succeeds; every other gets PO002 (stale attempt); the ledger holds exactly one
outcome for the attempt, the one the successful caller asked for.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import Database
from tests.helpers.phase5 import (
    Instruction,
    check_invariants_empty,
    complete,
    enqueue_and_claim,
    ledger,
    queue_depth,
    storm_size,
)
from tests.helpers.sessions import (
    open_sessions,
    run_together,
    session_names,
    sqlstates,
    timings,
)
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof

ITEM = Instruction("instr-complete-1", "bank-complete", "complete-key-1", "sepa", {"amount": "42.00"})


def test_one_completion_per_claimed_attempt(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    size = storm_size()
    claimed = enqueue_and_claim(url, ITEM, "api-worker", "phase5/terminal-api")
    outbox_id = str(claimed.outbox_id)

    names = session_names("terminal-api", size)
    asked = {name: ("DISPATCHED", "FAILED")[n % 2] for n, name in enumerate(names)}
    with open_sessions(url, "outbox_executor", names) as sessions:
        started = time.perf_counter()
        # Every session presents the claim's worker id: one worker's completion sent N times at once.
        outcomes = run_together(sessions, lambda s: complete(s.conn, outbox_id, claimed.attempt_no, asked[s.name],
                                                             "api-worker"))
        elapsed = time.perf_counter() - started

    winners = [o for o in outcomes if o.ok]
    proof.observe(storm_size=size, seconds=round(elapsed, 3), sqlstates=sqlstates(outcomes),
                  step_timings=timings(outcomes), winner=[(o.session, o.value) for o in winners],
                  sessions=[o.as_json() for o in outcomes])
    proof.check("exactly one completion succeeded, every other got PO002",
                want={"ok": 1, "PO002": size - 1}, have=sqlstates(outcomes))
    if len(winners) == 1:
        (winner,) = winners
        proof.check("the successful completion recorded attempt 2 in the state it asked for",
                    want=(2, asked[winner.session]), have=tuple(winner.value))
        proof.check("the ledger holds the claim and exactly that one outcome",
                    want=[(1, "DISPATCHING"), (2, asked[winner.session])],
                    have=[tuple(row) for row in ledger(url, outbox_id)])
    proof.check("the item left pending", want=0, have=queue_depth(url))
    check_invariants_empty(url, proof)
