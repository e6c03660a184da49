"""A stale worker cannot borrow the current claim (issue 12, finding 1).

The reproduction, step by step: worker w1 claims an item (attempt 1); repair requeues it
(attempt 2); worker w2 claims it (attempt 3). w1's late completion of attempt 1 is refused with
PO002, and the refusal does not tell w1 the current attempt number. w1 then presents attempt 3
with its own worker id: refused with PO002, nothing written. w2's real completion is accepted, and
the ledger records it under w2's name. A completion without a worker id (the six-argument form of
earlier releases) still works, and there is exactly one complete_outbox_attempt afterwards.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from runner.client import Client, Role
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.support import ProofRecord, role_connection

pytestmark = pytest.mark.proof

# The six-argument call of earlier releases: the SQL text itself is the point here.
COMPLETE_SIX_ARGUMENTS = ("SELECT attempt_no, state::text FROM payment_outbox.complete_outbox_attempt("
                          "%s, %s, %s::payment_outbox.outbox_attempt_state, %s, %s, %s)")


def claim(url: str, worker: str) -> list[tuple[str, int]]:
    with Client.connect(url, Role.EXECUTOR, name=worker) as client:
        return [(str(c.outbox_id), c.attempt_no) for c in client.claim(worker, 10)]


def complete(url: str, outbox_id: str, attempt_no: int, state: str, worker: str) -> tuple[str | None, str, object]:
    """(SQLSTATE or None, the whole error text a worker would see, the row returned)."""
    with Client.connect(url, Role.EXECUTOR, name=worker) as client:
        try:
            done = client.complete(outbox_id, attempt_no, state, worker_id=worker)
        except psycopg.Error as exc:
            diag = exc.diag
            text = " | ".join(filter(None, (diag.message_primary, diag.message_detail, diag.message_hint)))
            return exc.sqlstate, text, None
    return None, "", (done.attempt_no, done.state)


def ledger(url: str, outbox_id: str) -> list[tuple[int, str, str | None]]:
    return [(r.attempt_no, r.state, r.worker_id) for r in api.ledger_rows(url, outbox_id)]


def numbers_revealed(text: str, outbox_id: str) -> set[str]:
    """The numbers an error text names, the outbox id aside."""
    return set(re.findall(r"\d+", text.replace(outbox_id, "")))


def test_a_stale_worker_cannot_complete_the_current_claim(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    outbox_id = str(api.enqueue_once(url, "instr-f", "bank-f", "key-f")["outbox_id"])
    proof.check("w1 claims the item as attempt 1", want=[(outbox_id, 1)], have=claim(url, "w1"))
    proof.check("repair requeues it as attempt 2", want=[(outbox_id, 2, "ZOMBIE_REQUEUE")],
                have=[(str(r["outbox_id"]), r["attempt_no"], r["new_state"]) for r in api.repair(url, 0)])
    proof.check("w2 claims it as attempt 3", want=[(outbox_id, 3)], have=claim(url, "w2"))
    before = ledger(url, outbox_id)

    sqlstate, text, _ = complete(url, outbox_id, 1, "DISPATCHED", "w1")
    proof.observe(late_completion_error=text)
    proof.check("w1's late completion of attempt 1 is stale", want="PO002", have=sqlstate)
    proof.check("the refusal names no attempt number but the one presented", want=set(),
                have=numbers_revealed(text, outbox_id) - {"1"})

    sqlstate, text, _ = complete(url, outbox_id, 3, "FAILED", "w1")
    proof.observe(borrowed_completion_error=text)
    proof.check("w1 presenting attempt 3 with its own worker id is refused", want="PO002", have=sqlstate)
    proof.check("the refused completions wrote nothing", want=before, have=ledger(url, outbox_id))

    sqlstate, _, row = complete(url, outbox_id, 3, "DISPATCHED", "w2")
    proof.check("w2's real completion is accepted as attempt 4", want=(None, (4, "DISPATCHED")), have=(sqlstate, row))
    proof.check("the ledger records w2's outcome under w2's name",
                want=[(1, "DISPATCHING", "w1"), (2, "ZOMBIE_REQUEUE", "w1"), (3, "DISPATCHING", "w2"),
                      (4, "DISPATCHED", "w2")], have=ledger(url, outbox_id))
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_a_completion_without_a_worker_id_still_works(clean_database: Database, proof: ProofRecord) -> None:
    """Workers of earlier releases call the six-argument form; it is the same function now."""
    url = clean_database.url
    outbox_id = str(api.enqueue_once(url, "instr-g", "bank-g", "key-g", payload={"n": 1})["outbox_id"])
    (claimed,) = claim(url, "w-old")
    with role_connection(url, "outbox_executor", name="w-old") as conn:
        row = conn.execute(COMPLETE_SIX_ARGUMENTS,
                           (outbox_id, claimed[1], "DISPATCHED", None, None, "rail-1")).fetchone()
    proof.check("a six-argument completion is accepted", want=(2, "DISPATCHED"), have=tuple(row or ()))
    with role_connection(url, None, name="catalog") as conn:
        signatures = [r[0] for r in conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p "
            "WHERE p.proname = 'complete_outbox_attempt' AND p.pronamespace = 'payment_outbox'::regnamespace")]
    proof.check("exactly one complete_outbox_attempt, with the worker id last",
                want=["payment_outbox.complete_outbox_attempt(uuid,integer,payment_outbox.outbox_attempt_state,"
                      "text,text,text,text)"], have=signatures)
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_a_blank_or_foreign_worker_id_is_refused(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    outbox_id = str(api.enqueue_once(url, "instr-h", "bank-h", "key-h", payload={"n": 2})["outbox_id"])
    (claimed,) = claim(url, "w-real")
    before = ledger(url, outbox_id)
    proof.check("a completion naming another worker is stale", want="PO002",
                have=complete(url, outbox_id, claimed[1], "DISPATCHED", "w-other")[0])
    proof.check("a blank worker id is refused", want="PO010",
                have=complete(url, outbox_id, claimed[1], "DISPATCHED", "   ")[0])
    proof.check("nothing was written", want=before, have=ledger(url, outbox_id))
    proof.check("the holder completes it", want=None,
                have=complete(url, outbox_id, claimed[1], "DISPATCHED", "w-real")[0])
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
