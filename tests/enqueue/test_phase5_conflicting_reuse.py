"""Phase 5, proof 2: conflicting reuse of one idempotency key inside a storm.

N sessions as outbox_ingest are released together. Half send the original instruction; the
others send the same (instruction_id, idempotency_key) with a different payload, participant or
rail type. Whatever the key held before the storm (nothing, a pending item, a dispatched item),
afterwards it holds exactly one item; every caller whose arguments equal that item's got it,
and every other caller got PO001 and wrote nothing.

When the key is new, the first committed call decides what the key holds: usually an original
(half the sessions), but a conflicting call can win the race, and then the originals are the
reuse. The proof asserts the rule for whichever won and records which one it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from psycopg.types.json import Jsonb

from tests.conftest import Database
from tests.helpers.phase5 import (
    Instruction,
    check_invariants_empty,
    claim,
    complete,
    enqueue,
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

ORIGINAL = Instruction("instr-reuse-1", "bank-reuse", "reuse-key-1", "sepa", {"amount": "99.10", "currency": "EUR"})
VARIANTS = {
    "original": ORIGINAL,
    "payload": ORIGINAL.differing(payload={"amount": "99.11", "currency": "EUR"}),
    "participant": ORIGINAL.differing(participant_id="bank-other"),
    "rail_type": ORIGINAL.differing(rail_type="swift"),
}
# The package's payload fingerprint: sha256 of the jsonb's canonical text.
PAYLOAD_SHA256 = "SELECT sha256(convert_to((%s::jsonb)::text, 'UTF8'))"
# Half the sessions send the original; the rest cycle through the three ways to differ.
CYCLE = ["original", "payload", "original", "participant", "original", "rail_type"]


@dataclass(frozen=True)
class HeldItem:
    """What the ledger says the key holds, read as outbox_auditor."""

    outbox_id: str
    participant_id: str
    rail_type: str
    sequence_id: int
    payload_sha256: bytes


def held_items(url: str) -> list[HeldItem]:
    with role_connection(url, "outbox_auditor", name="phase5/reuse/ledger") as conn:
        rows = conn.execute(
            "SELECT DISTINCT outbox_id::text, participant_id, rail_type, sequence_id, payload_sha256 "
            "FROM payment_outbox.payment_outbox_attempts WHERE instruction_id = %s AND idempotency_key = %s",
            ORIGINAL.key,
        ).fetchall()
    return [HeldItem(*row) for row in rows]


def variant_of(url: str, item: HeldItem) -> str | None:
    """Which variant's arguments the item holds (the payload compared by its sha256, as the package does)."""
    with role_connection(url, "outbox_readonly", name="phase5/reuse/sha") as conn:
        for kind, call in VARIANTS.items():
            sha = conn.execute(PAYLOAD_SHA256, (Jsonb(call.payload),)).fetchone()[0]
            if (item.participant_id, item.rail_type, bytes(item.payload_sha256)) == (
                    call.participant_id, call.rail_type, bytes(sha)):
                return kind
    return None


def seed_key(url: str, key_state: str) -> str | None:
    """Puts the original item in place before the storm; its outbox_id."""
    if key_state == "new":
        return None
    with role_connection(url, "outbox_ingest", name="phase5/reuse/seed") as conn:
        seeded = enqueue(conn, ORIGINAL)
    if key_state == "dispatched":
        with role_connection(url, "outbox_executor", name="phase5/reuse/dispatch") as conn:
            (claimed,) = claim(conn, "reuse-seeder", 10)
            complete(conn, claimed.outbox_id, claimed.attempt_no, "DISPATCHED", "reuse-seeder")
    return seeded.outbox_id


@pytest.mark.parametrize("key_state", ["new", "pending", "dispatched"])
def test_conflicting_reuse_in_a_storm(clean_database: Database, proof: ProofRecord, key_state: str) -> None:
    url = clean_database.url
    size = storm_size()
    seeded = seed_key(url, key_state)
    kinds = [CYCLE[n % len(CYCLE)] for n in range(size)]

    with open_sessions(url, "outbox_ingest", session_names("reuse", size)) as sessions:
        sent = {s.name: kind for s, kind in zip(sessions, kinds, strict=True)}
        started = time.perf_counter()
        outcomes = run_together(sessions, lambda s: enqueue(s.conn, VARIANTS[sent[s.name]]))
        elapsed = time.perf_counter() - started

    # Items still pending are claimed so that the ledger, which the auditor reads, names them too.
    with role_connection(url, "outbox_executor", name="phase5/reuse/claim") as conn:
        claim(conn, "reuse-verifier", 100)
    held = held_items(url)
    winner = variant_of(url, held[0]) if len(held) == 1 else None
    by_kind: dict[str, dict[str, int]] = {}
    for outcome in outcomes:
        counts = by_kind.setdefault(sent[outcome.session], {})
        counts[outcome.sqlstate or "ok"] = counts.get(outcome.sqlstate or "ok", 0) + 1
    proof.observe(storm_size=size, key_state=key_state, seconds=round(elapsed, 3), sqlstates=sqlstates(outcomes),
                  sqlstates_by_variant=by_kind, step_timings=timings(outcomes), held_by=winner,
                  held_items=[item.outbox_id for item in held], sessions=[o.as_json() for o in outcomes])

    proof.check("the key holds exactly one item", want=1, have=len(held))
    if key_state != "new":
        proof.check("the key still holds the item seeded before the storm, with the original arguments",
                    want=(seeded, "original"), have=(held[0].outbox_id, winner))
    proof.check("the item holds the arguments of one of the calls", want=True, have=winner in VARIANTS)
    want_state = "DISPATCHED" if key_state == "dispatched" else "PENDING"
    proof.check("every call with the held item's arguments got it; every other got PO001",
                want={o.session: (("ok", held[0].outbox_id, held[0].sequence_id, want_state)
                                  if sent[o.session] == winner else ("PO001", None, None, None)) for o in outcomes},
                have={o.session: (o.sqlstate or "ok", o.value and o.value.outbox_id, o.value and o.value.sequence_id,
                                  o.value and o.value.state) for o in outcomes})
    proof.check("the item has sequence id 1 of its participant", want=1, have=held[0].sequence_id)
    check_invariants_empty(url, proof)

