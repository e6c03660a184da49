"""Phase 5, proof 5: a mixed storm of new keys, repeats and conflicting reuse, with workers
dispatching while it runs.

A seeded workload (PHASE5_SEED) of PHASE5_MIXED_KEYS keys over 20 participants: every key is sent
once, half the keys again (a third of all calls are repeats), and a tenth of the repeats differ
in payload, participant or rail type. A key's calls are adjacent in the call list, which is dealt
round-robin to the ingest sessions, so the calls of one key arrive at about the same moment from
different sessions. Two executor sessions claim and complete while the storm runs, so repeats
also meet items that are in flight or already dispatched.

    ingest i00..i07   enqueue their share of the calls, one transaction per call
    dispatch d00..d01 claim a batch; complete it DISPATCHED in one transaction; until drained

Afterwards, from the ledger (as outbox_auditor) and the claims: per participant the sequence ids
are exactly 1..n; each key maps to exactly one item; every successful call got that item, with
its own arguments; every failed call got PO001 and differed from it.

This proof caught a double payment (about one run in twenty before the fix): a call's lookup
missed the key; another call of the key created the item, a dispatcher claimed and completed it
(its pending row was gone); then the first call's insert met no conflict and created a second
item, which was claimed. Creators of a key now meet at the permanent key register
(payment_outbox_idempotency_keys), and test_enqueue_completion_race.py holds that window open
deterministically. The record's `keys_with_several_items` names the key, both items and every
call of the key, should it ever happen again.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from runner.client import ClaimedItem
from tests.conftest import Database
from tests.helpers.phase5 import (
    Enqueued,
    Instruction,
    check_invariants_empty,
    claim,
    complete,
    enqueue,
    mixed_keys,
    queue_depth,
    seed,
)
from tests.helpers.sessions import (
    RaceSession,
    SessionOutcome,
    Together,
    open_sessions,
    session_names,
)
from tests.helpers.support import ProofRecord, role_connection

pytestmark = pytest.mark.proof

PARTICIPANTS = [f"bank-{n:02d}" for n in range(20)]
RAILS = ["sepa", "swift", "ach", "fps"]
INGEST_SESSIONS = 8
DISPATCH_SESSIONS = 2
DISPATCH_BATCH = 50


@dataclass(frozen=True)
class Call:
    number: int
    kind: str  # first | repeat | payload | participant | rail_type
    args: Instruction


def workload(rng: random.Random, keys: int) -> list[Call]:
    calls: list[Call] = []
    for n in range(keys):
        original = Instruction(f"mx-instr-{n}", rng.choice(PARTICIPANTS), f"mx-key-{n}", rng.choice(RAILS),
                               {"n": n, "amount": f"{rng.randint(1, 10_000_000) / 100:.2f}", "currency": "EUR"})
        group = [("first", original)]
        if rng.random() < 0.5:
            kind = rng.choice(["payload", "participant", "rail_type"]) if rng.random() < 0.1 else "repeat"
            group.append((kind, vary(rng, original, kind)))
        rng.shuffle(group)  # the differing call is sometimes the first to arrive
        base = len(calls)
        calls.extend([Call(base + i, kind, args) for i, (kind, args) in enumerate(group)])
    return calls


def vary(rng: random.Random, original: Instruction, kind: str) -> Instruction:
    if kind == "payload":
        return original.differing(payload={**original.payload, "amount": "0.01"})
    if kind == "participant":
        return original.differing(participant_id=rng.choice([p for p in PARTICIPANTS if p != original.participant_id]))
    if kind == "rail_type":
        return original.differing(rail_type=rng.choice([r for r in RAILS if r != original.rail_type]))
    return original


class Storm:
    """The shared state of one run: who is still enqueueing, and what each session saw."""

    def __init__(self, calls: list[Call]) -> None:
        self.calls = calls
        self.results: dict[int, Enqueued | str] = {}  # call number -> result or SQLSTATE
        self.caller: dict[int, str] = {}  # call number -> session name
        self.claims: list[tuple[str, ClaimedItem]] = []
        self.completion_errors: list[str] = []
        self.ingesting = INGEST_SESSIONS
        self.enqueued = 0  # calls returned so far: what a dispatcher with nothing to claim waits on
        self.progress = threading.Condition()
        self.lock = threading.Lock()

    def ingest(self, session: RaceSession, share: list[Call]) -> None:
        seen: dict[int, Enqueued | str] = {}
        try:
            for call in share:
                try:
                    seen[call.number] = enqueue(session.conn, call.args)
                except psycopg.Error as exc:
                    seen[call.number] = exc.sqlstate or "no sqlstate"
                with self.progress:
                    self.enqueued += 1
                    self.progress.notify_all()
        finally:
            with self.lock:
                self.results.update(seen)
                self.caller.update({number: session.name for number in seen})
            with self.progress:
                self.ingesting -= 1
                self.progress.notify_all()

    def dispatch(self, session: RaceSession) -> None:
        while True:
            with self.progress:
                done, enqueued = self.ingesting == 0, self.enqueued
            with session.conn.transaction():
                batch = claim(session.conn, session.name, DISPATCH_BATCH)
            if batch:
                with session.conn.transaction():
                    for item in batch:
                        try:  # a savepoint each, so one refused completion does not undo the batch
                            with session.conn.transaction():
                                complete(session.conn, item.outbox_id, item.attempt_no, "DISPATCHED", session.name)
                        except psycopg.Error as exc:
                            with self.lock:
                                self.completion_errors.append(
                                    f"{session.name} {item.outbox_id} {item.instruction_id}/{item.idempotency_key}: "
                                    f"{exc.sqlstate} {exc.diag.message_primary} "
                                    f"{exc.diag.message_detail or ''}".strip())
                with self.lock:
                    self.claims.extend((session.name, item) for item in batch)
            elif done:
                return  # ingest had finished before this claim found nothing: drained
            else:
                with self.progress:  # nothing due yet: wait for the next enqueue, not for a time
                    # The predicate runs inside this iteration's wait, while `enqueued` is this iteration's.
                    self.progress.wait_for(lambda: self.enqueued != enqueued or self.ingesting == 0)  # noqa: B023


def test_mixed_storm(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    calls = workload(random.Random(seed()), mixed_keys())
    storm = Storm(calls)
    shares = [calls[n::INGEST_SESSIONS] for n in range(INGEST_SESSIONS)]

    with open_sessions(url, "outbox_ingest", session_names("mixed/i", INGEST_SESSIONS)) as ingest, \
            open_sessions(url, "outbox_executor", session_names("mixed/d", DISPATCH_SESSIONS)) as dispatch:
        share_of = {s.name: share for s, share in zip(ingest, shares, strict=True)}
        started = time.perf_counter()
        outcomes = Together(ingest + dispatch, lambda s: storm.ingest(s, share_of[s.name]) if s.name in share_of
                            else storm.dispatch(s)).start().outcomes()
        elapsed = time.perf_counter() - started

    items = ledger_items(url)
    verify(proof, storm, items, outcomes, elapsed)
    proof.check("the queue is drained", want=0, have=queue_depth(url))
    check_invariants_empty(url, proof)


def ledger_items(url: str) -> dict[str, tuple[str, str, str, int, str]]:
    """outbox_id -> (instruction_id, idempotency_key, participant_id, sequence_id, rail_type), as outbox_auditor."""
    with role_connection(url, "outbox_auditor", name="phase5/mixed/ledger") as conn:
        rows = conn.execute(
            "SELECT DISTINCT outbox_id::text, instruction_id, idempotency_key, participant_id, sequence_id, rail_type "
            "FROM payment_outbox.payment_outbox_attempts"
        ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def verify(proof: ProofRecord, storm: Storm, items: dict[str, tuple[str, str, str, int, str]],
           outcomes: list[SessionOutcome], elapsed: float) -> None:
    calls = storm.calls
    kinds = Counter(c.kind for c in calls)
    states = Counter(r if isinstance(r, str) else "ok" for r in storm.results.values())
    claimed = {str(item.outbox_id): item for _, item in storm.claims}
    claims_per_attempt = Counter((str(item.outbox_id), item.attempt_no) for _, item in storm.claims)
    proof.observe(seed=seed(), keys=mixed_keys(), calls=len(calls), calls_by_kind=dict(kinds),
                  ingest_sessions=INGEST_SESSIONS, dispatch_sessions=DISPATCH_SESSIONS, seconds=round(elapsed, 2),
                  calls_per_second=round(len(calls) / elapsed) if elapsed else None, sqlstates=dict(states),
                  items=len(items), claims=len(storm.claims), completion_errors=storm.completion_errors[:10],
                  session_errors=[o.as_json() for o in outcomes if not o.ok],
                  returned_states=dict(Counter(r.state for r in storm.results.values() if not isinstance(r, str))))

    by_participant: dict[str, list[int]] = defaultdict(list)
    by_key: dict[tuple[str, str], list[str]] = defaultdict(list)
    for outbox_id, (instruction_id, key, participant, sequence_id, _) in items.items():
        by_participant[participant].append(sequence_id)
        by_key[(instruction_id, key)].append(outbox_id)
    proof.observe(items_per_participant={p: len(ids) for p, ids in sorted(by_participant.items())},
                  keys_with_several_items=several_items(storm, items, by_key))
    proof.check("each key maps to exactly one item", want={},
                have={f"{k[0]}/{k[1]}": ids for k, ids in by_key.items() if len(ids) != 1})
    proof.check("per participant the sequence ids are exactly 1..n", want={},
                have={p: sorted(ids) for p, ids in by_participant.items()
                      if sorted(ids) != list(range(1, len(ids) + 1))})
    proof.check("every key sent has its item", want=sorted({c.args.key for c in calls}), have=sorted(by_key))
    proof.check("every call returned", want=len(calls), have=len(storm.results))
    proof.check("the only error is PO001", want=["PO001"] if states.get("PO001") else [],
                have=sorted(s for s in states if s != "ok"))
    proof.check("no completion failed", want=[], have=storm.completion_errors[:10])
    proof.check("no attempt was claimed twice", want=[], have=[k for k, n in claims_per_attempt.items() if n > 1][:10])

    proof.check("every item in the ledger was claimed", want=sorted(items), have=sorted(claimed))
    proof.check("every claim agrees with the ledger", want=[], have=[
        i for i, c in claimed.items()
        if items.get(i) != (c.instruction_id, c.idempotency_key, c.participant_id, c.sequence_id, c.rail_type)][:10])

    wrong = []
    conflicting_winners = 0
    for call in calls:
        ids = by_key.get(call.args.key, [])
        held = Instruction.of(claimed[ids[0]]) if len(ids) == 1 and ids[0] in claimed else None
        result = storm.results.get(call.number)
        if held != call.args:
            if result != "PO001":
                wrong.append((call.number, call.kind, "want PO001", str(result)))
            continue
        conflicting_winners += call.kind in ("payload", "participant", "rail_type")
        if not isinstance(result, Enqueued) or (result.outbox_id, result.sequence_id) != (ids[0], items[ids[0]][3]):
            wrong.append((call.number, call.kind, f"want {ids[0]} sequence id {items[ids[0]][3]}", str(result)))
    proof.observe(keys_held_by_a_differing_call=conflicting_winners)
    proof.check("every call with the held item's arguments got it; every other got PO001", want=[], have=wrong[:20])


def several_items(storm: Storm, items: dict[str, tuple[str, str, str, int, str]],
                  by_key: dict[tuple[str, str], list[str]]) -> list[dict[str, Any]]:
    """For a key that holds more than one item: each item, and every call of the key with what it got."""
    found = []
    for key, ids in by_key.items():
        if len(ids) < 2:
            continue
        found.append({
            "key": "/".join(key),
            "items": [{"outbox_id": i, "participant_id": items[i][2], "sequence_id": items[i][3],
                       "rail_type": items[i][4]}
                      for i in ids],
            "calls": [{"number": c.number, "session": storm.caller.get(c.number), "kind": c.kind,
                       "participant_id": c.args.participant_id, "rail_type": c.args.rail_type,
                       "result": str(storm.results.get(c.number))} for c in storm.calls if c.args.key == key],
        })
    return found[:10]
