"""Interleaving specs of enqueue against enqueue: one key, and one participant with many keys."""

from __future__ import annotations

from collections.abc import Callable

from runner.harness.interleave import (
    Invariant,
    PermutationResult,
    Probe,
    Session,
    Spec,
    Step,
    StepOutcome,
)
from tests.interleavings.seeds import enqueue_sql

QUEUE_DEPTH = "SELECT queue_depth FROM payment_outbox.payment_outbox_queue_metrics"
Check = Callable[[PermutationResult, Probe], list[Invariant]]  # a Spec.check


def _ends(spec_sessions: tuple[Session, ...]) -> dict[str, str]:
    return {s.name: s.steps[-1].sql for s in spec_sessions}


def _overlapped(result: PermutationResult, first: str, second: str) -> bool:
    """`second` enqueued after `first` did and before `first` ended its transaction."""
    order = list(result.steps)
    return order.index(f"{first}_enqueue") < order.index(f"{second}_enqueue") < order.index(_end_step(result, first))


def _end_step(result: PermutationResult, session: str) -> str:
    return next(step for step in result.steps if step.startswith(f"{session}_") and not step.endswith("_enqueue"))


def _enqueue_outcomes(result: PermutationResult,
                      ends: dict[str, str]) -> tuple[dict[str, StepOutcome | None], Invariant]:
    """Each session's enqueue outcome, and the invariant that every one returned an item."""
    outcomes = {s: result.outcome(f"{s}_enqueue") for s in ends}
    errors = {s: (o.sqlstate, o.message) if o is not None else ("no outcome", None)
              for s, o in outcomes.items() if o is None or not o.ok}
    return outcomes, Invariant("every enqueue returned an item", want={}, have=errors)


def _check_same_key(sessions: tuple[Session, ...]) -> Check:
    ends = _ends(sessions)

    def check(result: PermutationResult, probe: Probe) -> list[Invariant]:
        outcomes, returned = _enqueue_outcomes(result, ends)
        checks = [returned]
        if not returned.passed:
            return checks
        items = {s: o.rows[0] for s, o in outcomes.items()}  # (outbox_id, sequence_id, state)
        committed = [s for s in ends if ends[s] == "COMMIT"]
        first, second = sorted(ends, key=lambda s: result.steps.index(f"{s}_enqueue"))
        overlapped = _overlapped(result, first, second)
        checks.append(Invariant(f"{second}_enqueue waits exactly when {first} has not ended its transaction",
                                want=overlapped, have=result.waited(f"{second}_enqueue")))
        checks.append(Invariant("committed sessions hold one item", want=1,
                                have=len({str(items[s][0]) for s in committed})))
        checks.append(Invariant("every call got sequence id 1: the same id, never a gap",
                                want={s: 1 for s in ends}, have={s: items[s][1] for s in ends}))
        if ends[first] == "COMMIT" and overlapped:
            checks.append(Invariant("the waiter returns the item the first call committed",
                                    want=str(items[first][0]), have=str(items[second][0])))
        if ends[first] == "ROLLBACK" and overlapped:
            checks.append(Invariant("after the first call aborted, the waiter created the item itself",
                                    want=True, have=str(items[second][0]) != str(items[first][0])))
        depth = probe.rows("outbox_readonly", QUEUE_DEPTH)[0][0]
        checks.append(Invariant("one item in the queue", want=1, have=depth))
        again = probe.rows("outbox_ingest", enqueue_sql("key-1"))[0]
        checks.append(Invariant("a repeat call returns the committed item", want=(str(items[committed[0]][0]), 1),
                                have=(str(again[0]), again[1])))
        return checks

    return check


def _check_participant(sessions: tuple[Session, ...]) -> Check:
    ends = _ends(sessions)

    def check(result: PermutationResult, probe: Probe) -> list[Invariant]:
        outcomes, returned = _enqueue_outcomes(result, ends)
        checks = [returned]
        if not returned.passed:
            return checks
        committed = [step.split("_")[0] for step in result.completion_order()
                     if step.endswith("_commit")]
        checks.append(Invariant("sequence ids follow commit order: 1, 2, ... with no gap",
                                want={s: n for n, s in enumerate(committed, start=1)},
                                have={s: outcomes[s].rows[0][1] for s in committed}))
        depth = probe.rows("outbox_readonly", QUEUE_DEPTH)[0][0]
        checks.append(Invariant("one item per committed call", want=len(committed), have=depth))
        for number, session in enumerate(committed, start=1):
            again = probe.rows("outbox_ingest", enqueue_sql(f"key-{session}"))[0]
            checks.append(Invariant(f"a repeat of {session}'s key returns its item",
                                    want=(str(outcomes[session].rows[0][0]), number), have=(str(again[0]), again[1])))
        return checks

    return check


def _same_key(name: str, first_end: str, valid: int) -> Spec:
    sessions = (
        Session(name="s1", role="outbox_ingest", setup=("BEGIN",), steps=(
            Step("s1_enqueue", enqueue_sql("key-1")), Step(f"s1_{first_end.lower()}", first_end))),
        Session(name="s2", role="outbox_ingest", setup=("BEGIN",), steps=(
            Step("s2_enqueue", enqueue_sql("key-1")), Step("s2_commit", "COMMIT"))),
    )
    return Spec(name=name, sessions=sessions, check=_check_same_key(sessions), valid=valid)


def _participant(name: str, ends: tuple[str, ...], valid: int, permutations: tuple[str, ...] | None = None) -> Spec:
    sessions = tuple(
        Session(name=f"s{n}", role="outbox_ingest", setup=("BEGIN",), steps=(
            Step(f"s{n}_enqueue", enqueue_sql(f"key-s{n}")), Step(f"s{n}_{end.lower()}", end)))
        for n, end in enumerate(ends, start=1)
    )
    listed = tuple(tuple(p.split()) for p in permutations) if permutations else None
    return Spec(name=name, sessions=sessions, check=_check_participant(sessions), permutations=listed, valid=valid)


# Three sessions: a commit wakes every enqueue waiting for it, and which of two waiters takes the
# allocator first is the server's choice (both outcomes keep commit order, but the transcript
# would differ from run to run). So, as the isolation tester's own specs do, the three-session
# spec lists the permutations in which at most one enqueue waits at a time.
THREE_SESSIONS = (
    "s1_enqueue s2_enqueue s1_commit s3_enqueue s2_rollback s3_commit",
    "s2_enqueue s1_enqueue s2_rollback s3_enqueue s1_commit s3_commit",
    "s2_enqueue s3_enqueue s2_rollback s1_enqueue s3_commit s1_commit",
    "s3_enqueue s1_enqueue s3_commit s2_enqueue s1_commit s2_rollback",
    "s3_enqueue s3_commit s2_enqueue s1_enqueue s2_rollback s1_commit",
    "s1_enqueue s1_commit s2_enqueue s3_enqueue s2_rollback s3_commit",
    "s2_enqueue s2_rollback s1_enqueue s3_enqueue s1_commit s3_commit",
)

def _bulk_session(name: str, calls: tuple[tuple[str, str], ...]) -> Session:
    """A payment file: one transaction of single calls, (participant, key) each, then COMMIT."""
    return Session(name=name, role="outbox_ingest", setup=("BEGIN",), steps=(
        *(Step(f"{name}_enqueue_{key}", enqueue_sql(key, participant)) for participant, key in calls),
        Step(f"{name}_commit", "COMMIT")))


def _failures(result: PermutationResult) -> dict[str, str | None]:
    return {e.step: e.outcome.sqlstate for e in result.events
            if e.status == "completed" and e.outcome is not None and not e.outcome.ok}


def _check_bulk_and_single(result: PermutationResult, probe: Probe) -> list[Invariant]:
    """A file of bank-z (k-1, k-2) and a single call of k-2: never a deadlock, one item per key."""
    checks = [Invariant("no step failed (no deadlock)", want={}, have=_failures(result))]
    if checks[0].have:
        return checks
    file_k2 = result.outcome("s1_enqueue_k-2").rows[0]
    single_k2 = result.outcome("s2_enqueue_k-2").rows[0]
    checks.append(Invariant("the file and the single call of k-2 got one item, one sequence id",
                            want=(str(file_k2[0]), file_k2[1]), have=(str(single_k2[0]), single_k2[1])))
    checks.append(Invariant("two items in the queue", want=2, have=probe.rows("outbox_readonly", QUEUE_DEPTH)[0][0]))
    ids = sorted([result.outcome("s1_enqueue_k-1").rows[0][1], file_k2[1]])
    checks.append(Invariant("bank-z's ids are 1 and 2", want=[1, 2], have=ids))
    return checks


def _first_steps_before_second(result: PermutationResult, first: tuple[str, str], second: tuple[str, str]) -> bool:
    order = list(result.steps)
    return max(order.index(step) for step in first) < min(order.index(step) for step in second)


def _check_two_files(sessions: tuple[Session, ...],
                     crossing: bool) -> Callable[[PermutationResult, Probe], list[Invariant]]:
    calls = {s.name: [step.name for step in s.steps[:-1]] for s in sessions}

    def check(result: PermutationResult, probe: Probe) -> list[Invariant]:
        failures = _failures(result)
        deadlocked = crossing and _first_steps_before_second(
            result, (calls["s1"][0], calls["s2"][0]), (calls["s1"][1], calls["s2"][1]))
        checks = [Invariant("a deadlock (40P01) exactly when each file holds one participant and wants the other's",
                            want=1 if deadlocked else 0, have=sum(1 for code in failures.values() if code == "40P01")),
                  Invariant("no other error", want=[], have=[c for c in failures.values() if c != "40P01"])]
        aborted = {step.split("_")[0] for step, code in failures.items() if code == "40P01"}
        committed = [s for s in calls if s not in aborted]
        checks.append(Invariant("the aborted file wrote nothing, the other committed both items",
                                want=2 * len(committed), have=probe.rows("outbox_readonly", QUEUE_DEPTH)[0][0]))
        for session in aborted:  # the client's remedy: retry the whole file
            for step in calls[session]:
                sql = next(s.sql for ses in sessions for s in ses.steps if s.name == step)
                probe.rows("outbox_ingest", sql)
        checks.append(Invariant("after a retry of the aborted file, four items", want=4,
                                have=probe.rows("outbox_readonly", QUEUE_DEPTH)[0][0]))
        return checks

    return check


def _two_files(name: str, first: tuple[tuple[str, str], ...], second: tuple[tuple[str, str], ...],
               crossing: bool, valid: int) -> Spec:
    sessions = (_bulk_session("s1", first), _bulk_session("s2", second))
    return Spec(name=name, sessions=sessions, check=_check_two_files(sessions, crossing), valid=valid)


BULK_AND_SINGLE = (_bulk_session("s1", (("bank-z", "k-1"), ("bank-z", "k-2"))),
                   _bulk_session("s2", (("bank-z", "k-2"),)))

# valid: of every order of the two sessions' steps, those that never send a step to a session
# whose enqueue waits (for the other's key or allocator row, held to its commit or rollback).
SPECS = (
    _same_key("enqueue_same_key_first_commits", "COMMIT", valid=4),
    _same_key("enqueue_same_key_first_aborts", "ROLLBACK", valid=4),
    _participant("enqueue_participant_commits", ("COMMIT", "COMMIT"), valid=4),
    _participant("enqueue_participant_first_aborts", ("ROLLBACK", "COMMIT"), valid=4),
    _participant("enqueue_participant_three_sessions", ("COMMIT", "ROLLBACK", "COMMIT"), valid=7,
                 permutations=THREE_SESSIONS),
    Spec(name="enqueue_file_vs_single_call_same_key", sessions=BULK_AND_SINGLE, check=_check_bulk_and_single,
         valid=5),
    # Crossing: where each file holds one participant and wants the other's, the deadlock detector
    # aborts one (40P01) and the other goes on, so those orders stay valid.
    _two_files("enqueue_files_crossing_participants", (("bank-y", "a-1"), ("bank-z", "a-2")),
               (("bank-z", "b-1"), ("bank-y", "b-2")), crossing=True, valid=12),
    _two_files("enqueue_files_sorted_by_participant", (("bank-y", "a-1"), ("bank-z", "a-2")),
               (("bank-y", "b-1"), ("bank-z", "b-2")), crossing=False, valid=6),
)
