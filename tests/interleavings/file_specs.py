"""Interleaving specs of payment files (enqueue_payment_outbox_batch) against files and single calls:
never a deadlock, never a duplicate, each participant's ids consecutive with none burnt."""

from __future__ import annotations

import json
from collections.abc import Callable

from runner.harness.interleave import Invariant, PermutationResult, Probe, Session, Spec, Step
from tests.interleavings.seeds import INSTRUCTION, PAYLOAD, enqueue_sql

QUEUE_DEPTH = "SELECT queue_depth FROM payment_outbox.payment_outbox_queue_metrics"
Call = tuple[str, str]  # (participant, key)


def file_sql(calls: tuple[Call, ...]) -> str:
    items = [{"instruction_id": INSTRUCTION, "participant_id": participant, "idempotency_key": key,
              "rail_type": "sepa", "payload": json.loads(PAYLOAD)} for participant, key in calls]
    return ("SELECT outbox_id, sequence_id, state FROM payment_outbox.enqueue_payment_outbox_batch("
            f"'{json.dumps(items)}') ORDER BY item_no")


def _file_session(name: str, calls: tuple[Call, ...]) -> Session:
    return Session(name=name, role="outbox_ingest", setup=("BEGIN",), steps=(
        Step(f"{name}_file", file_sql(calls)), Step(f"{name}_commit", "COMMIT")))


def _single_session(name: str, call: Call, end: str = "COMMIT") -> Session:
    participant, key = call
    return Session(name=name, role="outbox_ingest", setup=("BEGIN",), steps=(
        Step(f"{name}_enqueue", enqueue_sql(key, participant)), Step(f"{name}_{end.lower()}", end)))


def _check(calls: dict[str, tuple[Call, ...]]) -> Callable[[PermutationResult, Probe], list[Invariant]]:
    """`calls`: each session's first step and the (participant, key) of each row it returns."""

    def check(result: PermutationResult, probe: Probe) -> list[Invariant]:
        failures = {e.step: e.outcome.sqlstate for e in result.events
                    if e.status == "completed" and e.outcome is not None and not e.outcome.ok}
        checks = [Invariant("no step failed (no deadlock, no duplicate key)", want={}, have=failures)]
        if failures:
            return checks
        returned: dict[Call, set[tuple[str, int]]] = {}
        for step, step_calls in calls.items():
            outcome = result.outcome(step)
            rows = (outcome.rows or []) if outcome is not None else []
            for call, row in zip(step_calls, rows, strict=True):
                returned.setdefault(call, set()).add((str(row[0]), row[1]))
        checks.append(Invariant("every call of a key got one item and one sequence id",
                                want={}, have={k: sorted(v) for k, v in returned.items() if len(v) != 1}))
        items = {call: next(iter(v)) for call, v in returned.items()}
        checks.append(Invariant("one item per key in the queue", want=len(items),
                                have=probe.rows("outbox_readonly", QUEUE_DEPTH)[0][0]))
        by_participant: dict[str, list[int]] = {}
        for (participant, _), (_, sequence_id) in items.items():
            by_participant.setdefault(participant, []).append(sequence_id)
        checks.append(Invariant("each participant's ids are 1, 2, ... with no gap and no duplicate",
                                want={p: list(range(1, len(ids) + 1)) for p, ids in by_participant.items()},
                                have={p: sorted(ids) for p, ids in by_participant.items()}))
        for step, step_calls in calls.items():  # keys no other session sent are new in this file
            others = {c for other, other_calls in calls.items() if other != step for c in other_calls}
            for participant in sorted({p for p, _ in step_calls}):
                mine = [items[c][1] for c in dict.fromkeys(step_calls) if c[0] == participant and c not in others]
                checks.append(Invariant(f"{step}: {participant}'s new items consecutive in file order",
                                        want=list(range(mine[0], mine[0] + len(mine))) if mine else [], have=mine))
        for (participant, key), (outbox_id, sequence_id) in items.items():
            again = probe.rows("outbox_ingest", enqueue_sql(key, participant))[0]
            checks.append(Invariant(f"a repeat of {key} returns its item", want=(outbox_id, sequence_id),
                                    have=(str(again[0]), again[1])))
        return checks

    return check


def _spec(name: str, sessions: tuple[Session, ...], calls: dict[str, tuple[Call, ...]], valid: int,
          permutations: tuple[str, ...] | None = None) -> Spec:
    listed = tuple(tuple(p.split()) for p in permutations) if permutations else None
    return Spec(name=name, sessions=sessions, check=_check(calls), permutations=listed, valid=valid)


# Two files over bank-y and bank-z in opposite order, while s3's single call holds bank-z's allocator:
# s1 waits for bank-z, and a file that locked its participants in file order would hold bank-y
# while it waits; s2, whose file starts with bank-y, would then take bank-z first and wait for
# bank-y: a deadlock. Locked in participant order, s1 holds nothing while it waits and s2 waits
# for s1. Listed permutations: a commit wakes one waiter at a time, so the transcript is stable.
FILE_S1: tuple[Call, ...] = (("bank-z", "a-1"), ("bank-y", "a-2"), ("bank-z", "a-3"))
FILE_S2: tuple[Call, ...] = (("bank-y", "b-1"), ("bank-z", "b-2"), ("bank-y", "b-3"))
OPPOSITE = _spec(
    "file_vs_file_opposite_participant_order",
    (_file_session("s1", FILE_S1), _file_session("s2", FILE_S2), _single_session("s3", ("bank-z", "c-1"))),
    {"s1_file": FILE_S1, "s2_file": FILE_S2, "s3_enqueue": (("bank-z", "c-1"),)}, 4,
    ("s3_enqueue s1_file s2_file s3_commit s1_commit s2_commit",
     "s3_enqueue s2_file s1_file s3_commit s2_commit s1_commit",
     "s3_enqueue s1_file s3_commit s2_file s1_commit s2_commit",
     "s1_file s1_commit s2_file s2_commit s3_enqueue s3_commit"),
)

# A file and a single call sharing key k-2 (same arguments). s3 holds key k-1 (for another
# participant, then rolls back), so the file stops between its allocator and its keys: it holds
# bank-z's allocator and waits for k-1. A single call that registered its key before it waited for
# the allocator would now hold k-2 and wait for the file, which after s3's rollback waits for k-2:
# a deadlock. Taking the allocator first, the single call waits holding nothing and then returns
# the file's item. Each commit or rollback wakes one waiter, so the transcript is stable; every
# order of the file and the single call alone is run by the next spec.
FILE_K: tuple[Call, ...] = (("bank-z", "k-1"), ("bank-z", "k-2"))
SHARED_KEY_WAITING = _spec(
    "file_vs_single_call_shared_key_behind_allocator",
    (_file_session("s1", FILE_K), _single_session("s2", ("bank-z", "k-2")),
     _single_session("s3", ("bank-a", "k-1"), "ROLLBACK")),
    {"s1_file": FILE_K, "s2_enqueue": (("bank-z", "k-2"),)}, 1,
    ("s3_enqueue s1_file s2_enqueue s3_rollback s1_commit s2_commit",),
)
SHARED_KEY = _spec(
    "file_vs_single_call_shared_key",
    (_file_session("s1", FILE_K), _single_session("s2", ("bank-z", "k-2"))),
    {"s1_file": FILE_K, "s2_enqueue": (("bank-z", "k-2"),)},
    4,  # the later of the two waits for the other's allocator: its session's commit is then invalid
)

# A file and a single call on one participant, different keys: ids follow commit order, the file's
# consecutive, none burnt. The single call waits for the file's allocator (or the file for the
# call's) and must then take the id after the ones the other committed, not one read before it
# waited.
FILE_P: tuple[Call, ...] = (("bank-z", "f-1"), ("bank-z", "f-2"), ("bank-z", "f-3"))
SAME_PARTICIPANT = _spec(
    "file_vs_single_call_same_participant",
    (_file_session("s1", FILE_P), _single_session("s2", ("bank-z", "g-1"))),
    {"s1_file": FILE_P, "s2_enqueue": (("bank-z", "g-1"),)},
    4,  # as above
)

SPECS = (OPPOSITE, SHARED_KEY_WAITING, SHARED_KEY, SAME_PARTICIPANT)
