"""Phase 5, proof 1: an idempotent enqueue storm.

N sessions (PHASE5_STORM_SIZE, default 32), each on its own connection as outbox_ingest, are
released together by a barrier and enqueue the same payment instruction with the same key:

    permutation  s00_enqueue s01_enqueue ... s31_enqueue   (all at once)

They must all get one item, one pending row and one sequence id, and the participant's allocator
must have moved by exactly one: the next new key of that participant gets the id after it.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import Database
from tests.helpers.phase5 import (
    Instruction,
    check_invariants_empty,
    claim,
    enqueue,
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
from tests.helpers.support import ProofRecord, role_connection

pytestmark = pytest.mark.proof

INSTRUCTION = Instruction("instr-storm-1", "bank-storm", "retry-key-1", "sepa", {"amount": "125.00", "currency": "EUR"})


@pytest.mark.parametrize("participant", ["new", "known"])
def test_same_instruction_from_n_sessions_is_one_item(clean_database: Database, proof: ProofRecord,
                                                      participant: str) -> None:
    """`new`: the storm also creates the participant's allocator row; `known`: the participant
    already holds one item, so the storm's item must get sequence id 2."""
    url = clean_database.url
    size = storm_size()
    earlier = 0
    if participant == "known":
        with role_connection(url, "outbox_ingest", name="phase5/enqueue-storm/seed") as conn:
            enqueue(conn, INSTRUCTION.differing(instruction_id="instr-storm-0", idempotency_key="earlier-key"))
        earlier = 1

    with open_sessions(url, "outbox_ingest", session_names("enqueue-storm", size)) as sessions:
        started = time.perf_counter()
        outcomes = run_together(sessions, lambda s: enqueue(s.conn, INSTRUCTION))
        elapsed = time.perf_counter() - started
    results = [o.value for o in outcomes if o.ok]
    proof.observe(storm_size=size, participant=participant, seconds=round(elapsed, 3), sqlstates=sqlstates(outcomes),
                  step_timings=timings(outcomes), sessions=[o.as_json() for o in outcomes],
                  distinct_outbox_ids=sorted({r.outbox_id for r in results}),
                  distinct_sequence_ids=sorted({r.sequence_id for r in results}),
                  states=sorted({r.state for r in results}))

    proof.check("no call failed", want={"ok": size}, have=sqlstates(outcomes))
    proof.check("every call returned the same outbox_id", want=1, have=len({r.outbox_id for r in results}))
    proof.check("every call returned the same sequence_id, the participant's next",
                want=[earlier + 1], have=sorted({r.sequence_id for r in results}))
    proof.check("every call saw the item PENDING", want=["PENDING"], have=sorted({r.state for r in results}))
    proof.check("exactly one pending row besides earlier items", want=earlier + 1, have=queue_depth(url))

    # The allocator moved by exactly one: the participant's next new key gets the id after the storm's.
    with role_connection(url, "outbox_ingest", name="phase5/enqueue-storm/probe") as conn:
        probe = enqueue(conn, INSTRUCTION.differing(instruction_id="instr-storm-probe", idempotency_key="probe-key"))
    proof.check("no sequence id burnt: the next new key of the participant gets the next id",
                want=earlier + 2, have=probe.sequence_id)

    with role_connection(url, "outbox_executor", name="phase5/enqueue-storm/claim") as conn:
        held = [c for c in claim(conn, "storm-verifier", 100) if c.idempotency_key == INSTRUCTION.idempotency_key]
    proof.check("the database holds one item for (instruction_id, idempotency_key), with the call's arguments",
                want=[(results[0].outbox_id, INSTRUCTION.as_json())] if results else [],
                have=[(str(c.outbox_id), Instruction.of(c).as_json()) for c in held])
    check_invariants_empty(url, proof)
