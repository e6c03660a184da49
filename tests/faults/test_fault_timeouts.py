"""Fault: lock_timeout and statement_timeout fire inside claim and inside complete.

The owner holds a SHARE lock on the ledger, which the ledger INSERT of both functions waits for.
The timeout cancels the call with its documented SQLSTATE (55P03, 57014), raised from inside the
function; nothing it did before the wait survives (ledger and queue as before), and once the
lock is gone the same call succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql

from runner.worker import RailOutcome, Worker
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.faults import table_lock_held
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof

LEDGER = "payment_outbox.payment_outbox_attempts"
TIMEOUT = "200ms"
CASES = [
    ("claim", "lock_timeout", "55P03"),
    ("claim", "statement_timeout", "57014"),
    ("complete", "lock_timeout", "55P03"),
    ("complete", "statement_timeout", "57014"),
]


def snapshot(url: str) -> dict[str, Any]:
    return {"ledger": api.ledger(url), "queue": api.queue(url)}


def error_of(call: Callable[[], Any]) -> psycopg.Error | None:
    try:
        call()
    except psycopg.Error as exc:
        return exc
    return None


@pytest.mark.parametrize(("operation", "setting", "sqlstate"), CASES, ids=[f"{o}-{s}" for o, s, _ in CASES])
def test_timeout_inside_the_call_leaves_nothing(clean_database: Database, proof: ProofRecord, operation: str,
                                                setting: str, sqlstate: str) -> None:
    url = clean_database.url
    item = api.enqueue_once(url, "timeout-1", "bank-t", "timeout/1")
    with Worker.connected(url, "worker-timeout") as worker:
        claimed = worker.claim(5) if operation == "complete" else []
        call: Callable[[], Any] = {"claim": lambda: worker.claim(5),
                "complete": lambda: worker.complete(claimed[0], RailOutcome("DISPATCHED"))}[operation]
        before = snapshot(url)
        worker.conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(setting), sql.Literal(TIMEOUT)))
        with table_lock_held(url, LEDGER, "SHARE"):
            error = error_of(call)
        after = snapshot(url)
        worker.conn.execute(sql.SQL("RESET {}").format(sql.Identifier(setting)))
        retried = call()
    context = error.diag.context or "" if error is not None else ""
    proof.observe(error=str(error), context=context.splitlines()[-1] if context else "", before=before, after=after)
    proof.check(f"{setting} cancels {operation} with its SQLSTATE", want=sqlstate,
                have=error.sqlstate if error is not None else None)
    proof.check(f"the wait was inside {operation}'s function", want=True,
                have=f"{operation}_outbox_" in context)
    proof.check("ledger and queue unchanged by the cancelled call", want=before, have=after)
    if operation == "claim":
        proof.check("with the lock gone the claim takes the item", want=[(item["outbox_id"], 1)],
                    have=[(c.outbox_id, c.attempt_no) for c in retried])
    else:
        proof.check("with the lock gone the completion is recorded", want=("DISPATCHED", 2),
                    have=(retried.state, retried.attempt_no))
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
