"""Interleaving specs of the dispatch side: claim, complete and repair against each other."""

from __future__ import annotations

import re

from runner.harness.interleave import (
    Invariant,
    PermutationResult,
    Probe,
    Session,
    Spec,
    Step,
)
from tests.interleavings.seeds import ITEM_ID, claimed_item, claimed_items, enqueued

LEDGER = ("SELECT attempt_no, state::text, worker_id FROM payment_outbox.payment_outbox_attempts "
          "WHERE outbox_id = %s ORDER BY attempt_no")
ALL_LEDGER = ("SELECT outbox_id::text, attempt_no, state::text, worker_id FROM payment_outbox.payment_outbox_attempts "
              "ORDER BY outbox_id, attempt_no")
METRICS = "SELECT queue_depth, in_flight FROM payment_outbox.payment_outbox_queue_metrics"
TERMINAL_STATES = ("DISPATCHED", "FAILED")
REPAIR = "SELECT outbox_id::text, attempt_no, new_state FROM payment_outbox.repair_zombie_attempts(60)"


def _complete(state: str) -> str:
    """The seeded claim's own worker completing it."""
    return (f"SELECT attempt_no, state::text FROM payment_outbox.complete_outbox_attempt('{ITEM_ID}', 1, '{state}', "
            f"p_worker_id => 'worker-gone')")


def _transaction(name: str, role: str, action: str, sql: str) -> Session:
    return Session(name=name, role=role, setup=("BEGIN",),
                   steps=(Step(f"{name}_{action}", sql), Step(f"{name}_commit", "COMMIT")))


def _no_waits(result: PermutationResult) -> Invariant:
    return Invariant("no step waited", want=[], have=[e.step for e in result.events if e.status == "waiting"])


def _errors(result: PermutationResult, steps: list[str], allowed: set[str]) -> dict[str, str]:
    return {s: o.sqlstate or "?" for s in steps if (o := result.outcome(s)) is not None and not o.ok
            and o.sqlstate not in allowed}


def check_claims(result: PermutationResult, probe: Probe) -> list[Invariant]:
    claims = {s: result.outcome(f"{s}_claim") for s in ("s1", "s2")}
    checks = [_no_waits(result), Invariant("both claims succeeded", want={},
                                             have=_errors(result, ["s1_claim", "s2_claim"], set()))]
    if checks[-1].have:
        return checks
    got = {s: {str(row[0]) for row in o.rows} for s, o in claims.items()}
    checks.append(Invariant("never the same item", want=set(), have=got["s1"] & got["s2"]))
    checks.append(Invariant("all three items claimed, the first claim two of them",
                            want=(3, 2), have=(len(got["s1"] | got["s2"]), len(got[result.steps[0][:2]]))))
    ledger = probe.rows("outbox_auditor", ALL_LEDGER)
    checks.append(Invariant("one DISPATCHING attempt 1 per item, by the worker that claimed it",
                            want=sorted((i, 1, "DISPATCHING", f"worker-{s}") for s in got for i in got[s]),
                            have=sorted(tuple(row) for row in ledger)))
    checks.append(Invariant("three items in flight", want=(3, 3),
                            have=tuple(probe.rows("outbox_readonly", METRICS)[0])))
    return checks


def check_repair_vs_complete(result: PermutationResult, probe: Probe) -> list[Invariant]:
    repaired = result.outcome("s1_repair")
    completed = result.outcome("s2_complete")
    checks = [Invariant("no error but a stale completion (PO002)", want={},
                        have=_errors(result, ["s1_repair", "s2_complete"], {"PO002"}))]
    requeued = bool(repaired and repaired.ok and repaired.rows)
    dispatched = bool(completed and completed.ok)
    checks.append(Invariant("exactly one of requeue and completion took effect", want=1,
                            have=int(requeued) + int(dispatched)))
    ledger = [tuple(row[:2]) for row in probe.rows("outbox_auditor", LEDGER, (ITEM_ID,))]
    want = [(1, "DISPATCHING"), (2, "ZOMBIE_REQUEUE" if requeued else "DISPATCHED")]
    checks.append(Invariant("the ledger holds the claim and the one outcome, never both", want=want, have=ledger))
    checks.append(Invariant("queue: requeued items wait again, terminal ones are gone",
                            want=(1, 0) if requeued else (0, 0), have=tuple(probe.rows("outbox_readonly", METRICS)[0])))
    return checks


def check_complete_vs_complete(result: PermutationResult, probe: Probe) -> list[Invariant]:
    outcomes = {s: result.outcome(f"{s}_complete") for s in ("s1", "s2")}
    checks = [Invariant("no error but a stale completion (PO002)", want={},
                        have=_errors(result, ["s1_complete", "s2_complete"], {"PO002"}))]
    winners = [s for s, o in outcomes.items() if o is not None and o.ok]
    checks.append(Invariant("exactly one completion succeeded, the other was refused as stale",
                            want=1, have=len(winners)))
    if len(winners) != 1:
        return checks
    state = outcomes[winners[0]].rows[0][1]
    ledger = [tuple(row[:2]) for row in probe.rows("outbox_auditor", LEDGER, (ITEM_ID,))]
    checks.append(Invariant("one terminal attempt, the winner's", want=[(1, "DISPATCHING"), (2, state)], have=ledger))
    checks.append(Invariant("the item left the queue", want=(0, 0),
                            have=tuple(probe.rows("outbox_readonly", METRICS)[0])))
    return checks


def check_repair_vs_repair(result: PermutationResult, probe: Probe) -> list[Invariant]:
    outcomes = {s: result.outcome(f"{s}_repair") for s in ("s1", "s2")}
    checks = [_no_waits(result), Invariant("both repairs succeeded", want={},
                                             have=_errors(result, ["s1_repair", "s2_repair"], set()))]
    if checks[-1].have:
        return checks
    rows = {s: [tuple(r) for r in o.rows] for s, o in outcomes.items()}
    checks.append(Invariant("exactly one repair requeued the item, once",
                            want=[(ITEM_ID, 2, "ZOMBIE_REQUEUE")], have=rows["s1"] + rows["s2"]))
    ledger = [tuple(row[:2]) for row in probe.rows("outbox_auditor", LEDGER, (ITEM_ID,))]
    checks.append(Invariant("one ZOMBIE_REQUEUE in the ledger", want=[(1, "DISPATCHING"), (2, "ZOMBIE_REQUEUE")],
                            have=ledger))
    checks.append(Invariant("the item is due again", want=(1, 0),
                            have=tuple(probe.rows("outbox_readonly", METRICS)[0])))
    return checks


STALE_WORKER = "w1"  # held the seeded claim, then went silent
CURRENT_WORKER = "w2"


def _complete_as(attempt_no: int, state: str, worker: str) -> str:
    return (f"SELECT attempt_no, state::text FROM payment_outbox.complete_outbox_attempt("
            f"'{ITEM_ID}', {attempt_no}, '{state}', p_worker_id => '{worker}')")


def _numbers_named(message: str | None) -> set[str]:
    return set(re.findall(r"\d+", (message or "").replace(ITEM_ID, "")))


def check_stale_worker(result: PermutationResult, probe: Probe) -> list[Invariant]:
    """w1's claim (attempt 1) is repaired (attempt 2) and w2 claims the item (attempt 3): whatever
    the order, w1 can complete only its own claim while it is current, never w2's."""
    outcomes = {step: result.outcome(step) for step in result.steps}
    checks = [Invariant("no error but a stale completion (PO002)", want={},
                        have=_errors(result, list(result.steps), {"PO002"}))]
    borrowed = outcomes["s3_complete_borrowed"]
    checks.append(Invariant("w1 presenting attempt 3 is always refused", want="PO002",
                            have=borrowed.sqlstate if borrowed is not None else None))
    checks.append(Invariant("no refusal names an attempt number but the one presented",
                            want={"s3_complete_late": set(), "s3_complete_borrowed": set(), "s2_complete": set()},
                            have={"s3_complete_late": _numbers_named(outcomes["s3_complete_late"].message) - {"1"},
                                  "s3_complete_borrowed": _numbers_named(borrowed.message) - {"3"},
                                  "s2_complete": _numbers_named(outcomes["s2_complete"].message) - {"3"}}))
    succeeded = {"s3_complete_late": (2, "DISPATCHED", STALE_WORKER), "s2_complete": (4, "DISPATCHED", CURRENT_WORKER)}
    want = sorted(row for step, row in succeeded.items() if outcomes[step].ok)
    terminal = sorted(tuple(r) for r in probe.rows("outbox_auditor", LEDGER, (ITEM_ID,)) if r[1] in TERMINAL_STATES)
    checks.append(Invariant("the terminal attempts are exactly the accepted completions, each under its own worker",
                            want=want, have=terminal))
    return checks


# A batch of three claims of one worker, in this order; only ITEM_ID's claim is old enough to repair.
BATCH_WORKER = "worker-batch"
BATCH_ITEMS = ("00000000-0000-4000-8000-000000000002", ITEM_ID, "00000000-0000-4000-8000-000000000003")
BATCH_SEED = claimed_items(((BATCH_ITEMS[0], "key-2", "1 second"), (ITEM_ID, "key-1", "1 hour"),
                            (BATCH_ITEMS[2], "key-3", "1 second")), BATCH_WORKER)
COMPLETE_BATCH = ("SELECT outbox_id::text, outcome, attempt_no, state::text "
                  "FROM payment_outbox.complete_outbox_attempts("
                  f"'{BATCH_WORKER}', ARRAY[{', '.join(repr(i) for i in BATCH_ITEMS)}]::uuid[], ARRAY[1, 1, 1], "
                  "ARRAY['DISPATCHED', 'DISPATCHED', 'DISPATCHED']::payment_outbox.outbox_attempt_state[]) "
                  "ORDER BY item_no")
TERMINAL = ("SELECT outbox_id::text, count(*) FROM payment_outbox.payment_outbox_attempts "
            "WHERE state IN ('DISPATCHED', 'FAILED') GROUP BY outbox_id")


def check_repair_vs_complete_batch(result: PermutationResult, probe: Probe) -> list[Invariant]:
    repaired = result.outcome("s1_repair")
    completed = result.outcome("s2_complete")
    checks = [Invariant("neither the repair nor the batch completion raised", want={},
                        have=_errors(result, ["s1_repair", "s2_complete"], set()))]
    if checks[-1].have or repaired is None or completed is None:
        return checks
    requeued = [tuple(row) for row in repaired.rows or []]
    checks.append(Invariant("the repair requeued nothing or the old claim only, once",
                            want=True, have=requeued in ([], [(ITEM_ID, 2, "ZOMBIE_REQUEUE")])))
    outcome = {row[0]: tuple(row[1:]) for row in completed.rows or []}
    done = ("completed", 2, "DISPATCHED")
    checks.append(Invariant("one row per completion, in the order given",
                            want=list(BATCH_ITEMS), have=[row[0] for row in completed.rows or []]))
    checks.append(Invariant("the repaired item is stale in the batch, otherwise completed; the others complete",
                            want={BATCH_ITEMS[0]: done, ITEM_ID: ("stale", None, None) if requeued else done,
                                  BATCH_ITEMS[2]: done},
                            have=outcome))
    ledger = [tuple(row[:3]) for row in probe.rows("outbox_auditor", ALL_LEDGER)]
    claims = [(i, 1, "DISPATCHING") for i in BATCH_ITEMS]
    ends = [(i, 2, "ZOMBIE_REQUEUE" if requeued and i == ITEM_ID else "DISPATCHED") for i in BATCH_ITEMS]
    checks.append(Invariant("the ledger holds each claim and its one outcome, never both for the repaired item",
                            want=sorted(claims + ends), have=sorted(ledger)))
    checks.append(Invariant("one terminal attempt per completed item, none for a requeued one",
                            want={i: 1 for i in BATCH_ITEMS if not (requeued and i == ITEM_ID)},
                            have={row[0]: row[1] for row in probe.rows("outbox_auditor", TERMINAL)}))
    checks.append(Invariant("queue: the requeued item waits again, completed ones are gone",
                            want=(1, 0) if requeued else (0, 0), have=tuple(probe.rows("outbox_readonly", METRICS)[0])))
    return checks


def _claim(worker: str) -> str:
    return f"SELECT outbox_id, attempt_no FROM payment_outbox.claim_outbox_batch('{worker}', 2)"


SPECS = (
    Spec(name="claim_vs_claim", seed=(enqueued("key-1"), enqueued("key-2"), enqueued("key-3")),
         sessions=(_transaction("s1", "outbox_executor", "claim", _claim("worker-s1")),
                   _transaction("s2", "outbox_executor", "claim", _claim("worker-s2"))),
         check=check_claims, valid=6),  # SKIP LOCKED: neither claim ever waits
    Spec(name="repair_vs_complete_stale_item", seed=claimed_item("1 hour"),
         sessions=(_transaction("s1", "outbox_repair", "repair", REPAIR),
                   _transaction("s2", "outbox_executor", "complete", _complete("DISPATCHED"))),
         # Repair skips a locked row; the completion waits for the repair's: invalid when it then commits.
         check=check_repair_vs_complete, valid=5),
    Spec(name="repair_vs_complete_batch", seed=BATCH_SEED,
         sessions=(_transaction("s1", "outbox_repair", "repair", REPAIR),
                   _transaction("s2", "outbox_executor", "complete", COMPLETE_BATCH)),
         check=check_repair_vs_complete_batch, valid=5),  # as above, for the batch
    Spec(name="complete_vs_complete", seed=claimed_item("1 second"),
         sessions=(_transaction("s1", "outbox_executor", "complete", _complete("DISPATCHED")),
                   _transaction("s2", "outbox_executor", "complete", _complete("FAILED"))),
         check=check_complete_vs_complete, valid=4),  # the second completion waits for the first's row lock
    Spec(name="stale_worker_vs_current_claim", seed=claimed_item("1 hour", worker=STALE_WORKER),
         sessions=(Session(name="s1", role="outbox_repair", steps=(Step("s1_repair", REPAIR),)),
                   Session(name="s2", role="outbox_executor", steps=(
                       Step("s2_claim", _claim(CURRENT_WORKER)),
                       Step("s2_complete", _complete_as(3, "DISPATCHED", CURRENT_WORKER)))),
                   Session(name="s3", role="outbox_executor", steps=(
                       Step("s3_complete_late", _complete_as(1, "DISPATCHED", STALE_WORKER)),
                       Step("s3_complete_borrowed", _complete_as(3, "FAILED", STALE_WORKER))))),
         check=check_stale_worker, valid=30),  # autocommit steps: nothing is held between steps
    Spec(name="repair_vs_repair", seed=claimed_item("1 hour"),
         sessions=(_transaction("s1", "outbox_repair", "repair", REPAIR),
                   _transaction("s2", "outbox_repair", "repair", REPAIR)),
         check=check_repair_vs_repair, valid=6),  # SKIP LOCKED: neither repair ever waits
)
