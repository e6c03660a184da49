"""Interleaving specs of pausing a rail: pause or resume against an enqueue and a claim of that rail."""

from __future__ import annotations

from runner.harness.interleave import Invariant, PermutationResult, Probe, Session, Spec, Step
from tests.interleavings.seeds import enqueue_sql, enqueued

PAUSE = "SELECT paused, was_paused FROM payment_outbox.pause_rail('sepa', 'rail down', 'spec')"
RESUME = "SELECT paused, was_paused FROM payment_outbox.resume_rail('sepa', 'spec')"
CLAIM = "SELECT idempotency_key FROM payment_outbox.claim_outbox_batch('{worker}', 10)"
ALL_KEYS = {"key-1", "key-2"}


def _transaction(name: str, role: str, action: str, sql: str) -> Session:
    return Session(name=name, role=role, setup=("BEGIN",),
                   steps=(Step(f"{name}_{action}", sql), Step(f"{name}_commit", "COMMIT")))


def _sessions(operator_sql: str, operator_action: str) -> tuple[Session, ...]:
    return (
        _transaction("s1", "outbox_operator", operator_action, operator_sql),
        _transaction("s2", "outbox_ingest", "enqueue", enqueue_sql("key-2")),
        Session(name="s3", role="outbox_executor", steps=(Step("s3_claim", CLAIM.format(worker="worker-s3")),)),
    )


def _claimed(result: PermutationResult) -> set[str]:
    outcome = result.outcome("s3_claim")
    return {str(row[0]) for row in (outcome.rows or [])} if outcome is not None and outcome.ok else set()


def _basics(result: PermutationResult) -> list[Invariant]:
    failed = {e.step: o.sqlstate for e in result.events if (o := result.outcome(e.step)) is not None and not o.ok}
    return [Invariant("no step failed", want={}, have=failed),
            Invariant("no step waited", want=[], have=[e.step for e in result.events if e.status == "waiting"])]


def _before(result: PermutationResult, first: str, second: str) -> bool:
    return result.steps.index(first) < result.steps.index(second)


def check_pause(result: PermutationResult, probe: Probe) -> list[Invariant]:
    checks = _basics(result)
    claimed = _claimed(result)
    if _before(result, "s1_commit", "s3_claim"):
        checks.append(Invariant("a claim after the pause committed takes nothing of the paused rail",
                                want=set(), have=claimed))
    later = {str(row[0]) for row in probe.rows("outbox_executor", CLAIM.format(worker="worker-late"))}
    checks.append(Invariant("while the rail is paused no claim takes its items, the enqueue that raced the "
                            "pause included", want=set(), have=later))
    probe.rows("outbox_operator", RESUME)
    resumed = {str(row[0]) for row in probe.rows("outbox_executor", CLAIM.format(worker="worker-resumed"))}
    checks.append(Invariant("after resume every item not claimed before the pause is claimed",
                            want=ALL_KEYS - claimed, have=resumed))
    return checks


def check_resume(result: PermutationResult, probe: Probe) -> list[Invariant]:
    checks = _basics(result)
    claimed = _claimed(result)
    if _before(result, "s3_claim", "s1_commit"):
        checks.append(Invariant("a claim before the resume committed takes nothing of the paused rail",
                                want=set(), have=claimed))
    later = {str(row[0]) for row in probe.rows("outbox_executor", CLAIM.format(worker="worker-late"))}
    checks.append(Invariant("after the resume every item is claimed, the enqueue that raced the resume included",
                            want=ALL_KEYS - claimed, have=later))
    return checks


SPECS = (
    # Neither pausing nor resuming makes an enqueue or a claim wait: every order is valid.
    Spec(name="pause_vs_enqueue_vs_claim", seed=(enqueued("key-1"),), sessions=_sessions(PAUSE, "pause"),
         check=check_pause, valid=30),
    Spec(name="resume_vs_enqueue_vs_claim",
         seed=(enqueued("key-1"), ("outbox_operator", PAUSE)), sessions=_sessions(RESUME, "resume"),
         check=check_resume, valid=30),
)
