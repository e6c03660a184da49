"""Interleaving specs of quarantine (issue 16): an operator's release or fail against repair, a claim,
and another operator's decision. Exactly one decision wins; the other gets PO030 and writes nothing."""

from __future__ import annotations

from runner.harness.interleave import Invariant, PermutationResult, Probe, Session, Spec, Step
from tests.interleavings.seeds import INSTRUCTION, ITEM_ID, KEY, PARTICIPANT, PAYLOAD

LEDGER = ("SELECT attempt_no, state::text, actor FROM payment_outbox.payment_outbox_attempts "
          "WHERE outbox_id = %s ORDER BY attempt_no")
METRICS = "SELECT queue_depth, due_now, in_flight, quarantined FROM payment_outbox.payment_outbox_queue_metrics"
INVARIANTS = "SELECT invariant, detail FROM payment_outbox.check_invariants()"
REPAIR = "SELECT outbox_id::text, attempt_no, new_state FROM payment_outbox.repair_zombie_attempts(60)"
CLAIM = "SELECT outbox_id::text, attempt_no FROM payment_outbox.claim_outbox_batch('worker-new', 10)"
NOT_QUARANTINED = "PO030"


def _decide(function: str, actor: str) -> str:
    return (f"SELECT outbox_id::text, attempt_no, state::text FROM payment_outbox.{function}("
            f"'{ITEM_ID}', 'checked the rail by the key', '{actor}')")


def _transaction(name: str, role: str, action: str, sql: str) -> Session:
    return Session(name=name, role=role, setup=("BEGIN",),
                   steps=(Step(f"{name}_{action}", sql), Step(f"{name}_commit", "COMMIT")))


def _item(attempts: int, pending: str, ledger_state: str, claimed_ago: str) -> tuple[tuple[None, str], ...]:
    """(owner, SQL): item ITEM_ID with `attempts` ledger rows, alternating DISPATCHING and RETRYABLE,
    the last one `ledger_state`; `pending` sets the pending row's claim or quarantine columns."""
    return (
        (None, f"INSERT INTO payment_outbox.participant_outbox_sequences (participant_id, next_sequence_id) "
               f"VALUES ('{PARTICIPANT}', 2)"),
        (None, "INSERT INTO payment_outbox.payment_outbox_idempotency_keys (instruction_id, idempotency_key, "
               f"outbox_id) VALUES ('{INSTRUCTION}', '{KEY}', '{ITEM_ID}')"),
        (None, f"""INSERT INTO payment_outbox.payment_outbox_pending (
                       outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
                       payload, payload_sha256, attempt_count, created_at)
                   VALUES ('{ITEM_ID}', '{INSTRUCTION}', '{PARTICIPANT}', 1, '{KEY}', 'sepa', '{PAYLOAD}'::jsonb,
                       sha256(convert_to('{PAYLOAD}'::jsonb::text, 'UTF8')), {attempts}, now() - interval '1 day')"""),
        (None, f"UPDATE payment_outbox.payment_outbox_pending SET {pending}"),
        (None, f"""INSERT INTO payment_outbox.payment_outbox_attempts (
                      outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
                      payload_sha256, item_created_at, attempt_no, state, claimed_at, completed_at, worker_id,
                      reason)
                  SELECT p.outbox_id, p.instruction_id, p.participant_id, p.sequence_id, p.idempotency_key,
                         p.rail_type, p.payload_sha256, p.created_at, n,
                         (CASE WHEN n = {attempts} THEN '{ledger_state}'
                               WHEN n % 2 = 1 THEN 'DISPATCHING' ELSE 'RETRYABLE'
                          END)::payment_outbox.outbox_attempt_state,
                         now() - interval '{claimed_ago}',
                         CASE WHEN n % 2 = 0 THEN now() - interval '{claimed_ago}' END, 'worker-gone',
                         CASE WHEN n = {attempts} AND '{ledger_state}' = 'QUARANTINED' THEN 'seeded' END
                  FROM payment_outbox.payment_outbox_pending AS p, generate_series(1, {attempts}) AS n"""),
    )


# A zombie at the maximum attempt count (20): its claim, attempt 19, is an hour old.
ZOMBIE_AT_LIMIT = _item(19, "attempt_no = 19, worker_id = 'worker-gone', claimed_at = now() - interval '1 hour'",
                        "DISPATCHING", "1 hour")
# Quarantined at attempt 2: RETRYABLE at the maximum of an earlier setting.
QUARANTINED = _item(2, "next_attempt_at = 'infinity', quarantined_at = now(), quarantine_reason = 'seeded'",
                    "QUARANTINED", "1 hour")


def _errors(result: PermutationResult, steps: list[str], allowed: set[str]) -> dict[str, str]:
    return {s: o.sqlstate or "?" for s in steps if (o := result.outcome(s)) is not None and not o.ok
            and o.sqlstate not in allowed}


def _consistent(probe: Probe) -> Invariant:
    return Invariant("check_invariants() is empty", want=[], have=probe.rows("outbox_readonly", INVARIANTS))


def check_release_vs_repair(result: PermutationResult, probe: Probe) -> list[Invariant]:
    """Repair quarantines the zombie whatever the order; the release succeeds only once the
    quarantine has committed, else it is PO030 and writes nothing."""
    repaired = result.outcome("s1_repair")
    released = result.outcome("s2_release")
    checks = [Invariant("no error but a release of an item not quarantined (PO030)", want={},
                        have=_errors(result, ["s1_repair", "s2_release"], {NOT_QUARANTINED}))]
    if checks[-1].have or repaired is None or released is None:
        return checks
    checks.append(Invariant("repair quarantines the zombie at the maximum, never FAILED",
                            want=[(ITEM_ID, 20, "QUARANTINED")], have=[tuple(r) for r in repaired.rows or []]))
    ledger = [tuple(r) for r in probe.rows("outbox_auditor", LEDGER, (ITEM_ID,))][18:]
    if released.ok:
        checks.append(Invariant("the release followed the committed quarantine", want=True,
                                have=result.steps.index("s1_commit") < result.steps.index("s2_release")))
        checks.append(Invariant("ledger: the claim, QUARANTINED, RELEASED by the operator",
                                want=[(19, "DISPATCHING", None), (20, "QUARANTINED", None), (21, "RELEASED", "op-1")],
                                have=ledger))
        checks.append(Invariant("due again, not quarantined", want=(1, 1, 0, 0),
                                have=tuple(probe.rows("outbox_readonly", METRICS)[0])))
    else:
        checks.append(Invariant("ledger: the claim and QUARANTINED only",
                                want=[(19, "DISPATCHING", None), (20, "QUARANTINED", None)], have=ledger))
        checks.append(Invariant("quarantined, never due", want=(1, 0, 0, 1),
                                have=tuple(probe.rows("outbox_readonly", METRICS)[0])))
    checks.append(_consistent(probe))
    return checks


def _check_two_decisions(result: PermutationResult, probe: Probe,
                         decisions: dict[str, tuple[str, str]]) -> list[Invariant]:
    """decisions: session -> (its decision step, the state it records)."""
    steps = [step for step, _ in decisions.values()]
    checks = [Invariant("no error but PO030", want={}, have=_errors(result, steps, {NOT_QUARANTINED}))]
    outcomes = {s: result.outcome(step) for s, (step, _) in decisions.items()}
    winners = [s for s, o in outcomes.items() if o is not None and o.ok]
    losers = [o.sqlstate for s, o in outcomes.items() if o is not None and not o.ok]
    checks.append(Invariant("exactly one decision won, the other got PO030", want=(1, [NOT_QUARANTINED]),
                            have=(len(winners), losers)))
    if len(winners) != 1:
        return checks
    winner = winners[0]
    state = decisions[winner][1]
    ledger = [tuple(r) for r in probe.rows("outbox_auditor", LEDGER, (ITEM_ID,))]
    checks.append(Invariant("the ledger holds the winner's decision only, with its actor",
                            want=[(1, "DISPATCHING", None), (2, "QUARANTINED", None), (3, state, f"op-{winner[1]}")],
                            have=ledger))
    checks.append(Invariant("queue: a released item is due, a failed one gone",
                            want=(0, 0, 0, 0) if state == "FAILED" else (1, 1, 0, 0),
                            have=tuple(probe.rows("outbox_readonly", METRICS)[0])))
    checks.append(_consistent(probe))
    return checks


def check_release_vs_fail(result: PermutationResult, probe: Probe) -> list[Invariant]:
    return _check_two_decisions(result, probe, {"s1": ("s1_release", "RELEASED"), "s2": ("s2_fail", "FAILED")})


def check_release_vs_release(result: PermutationResult, probe: Probe) -> list[Invariant]:
    return _check_two_decisions(result, probe, {"s1": ("s1_release", "RELEASED"), "s2": ("s2_release", "RELEASED")})


def check_release_vs_claim(result: PermutationResult, probe: Probe) -> list[Invariant]:
    """A claim never takes a quarantined item: before the release commits it finds nothing, after
    it the item with attempt 4 (attempt_no still increasing past the RELEASED row 3)."""
    claimed = result.outcome("s1_claim")
    checks = [Invariant("neither raised", want={}, have=_errors(result, ["s1_claim", "s2_release"], set()))]
    if checks[-1].have or claimed is None:
        return checks
    after = result.steps.index("s2_commit") < result.steps.index("s1_claim")
    checks.append(Invariant("the claim takes the item only after the release committed, as attempt 4",
                            want=[(ITEM_ID, 4)] if after else [], have=[tuple(r) for r in claimed.rows or []]))
    ledger = [tuple(r[:2]) for r in probe.rows("outbox_auditor", LEDGER, (ITEM_ID,))]
    checks.append(Invariant("ledger", want=[(1, "DISPATCHING"), (2, "QUARANTINED"), (3, "RELEASED")]
                            + ([(4, "DISPATCHING")] if after else []), have=ledger))
    checks.append(_consistent(probe))
    return checks


SPECS = (
    Spec(name="quarantine_release_vs_repair", seed=ZOMBIE_AT_LIMIT,
         sessions=(_transaction("s1", "outbox_repair", "repair", REPAIR),
                   _transaction("s2", "outbox_operator", "release", _decide("release_quarantined", "op-1"))),
         check=check_release_vs_repair, valid=6),  # repair skips the locked row; the release never waits
    Spec(name="quarantine_release_vs_fail", seed=QUARANTINED,
         sessions=(_transaction("s1", "outbox_operator", "release", _decide("release_quarantined", "op-1")),
                   _transaction("s2", "outbox_operator", "fail", _decide("fail_quarantined", "op-2"))),
         check=check_release_vs_fail, valid=4),  # the second decision waits for the first's row lock
    Spec(name="quarantine_release_vs_release", seed=QUARANTINED,
         sessions=(_transaction("s1", "outbox_operator", "release", _decide("release_quarantined", "op-1")),
                   _transaction("s2", "outbox_operator", "release", _decide("release_quarantined", "op-2"))),
         check=check_release_vs_release, valid=4),  # as above
    Spec(name="quarantine_release_vs_claim", seed=QUARANTINED,
         # The claim in a transaction of its own, as a worker claims (autocommit): a transaction begun
        # before the release would compare next_attempt_at with its own, earlier, now().
        sessions=(Session(name="s1", role="outbox_executor", steps=(Step("s1_claim", CLAIM),)),
                  _transaction("s2", "outbox_operator", "release", _decide("release_quarantined", "op-2"))),
         check=check_release_vs_claim, valid=3),  # the claim skips a locked row, never waits
)
