"""Claim, complete and repair at REPEATABLE READ and SERIALIZABLE (issue 12, finding 6).

In a transaction whose snapshot predates a change another session committed to the same item,
each call fails with 40001 and writes nothing, as the README's SQLSTATE table says; a retry in a
new transaction succeeds. (READ COMMITTED never raises it: the calls re-read the row instead.)
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from runner.client import Client, Role
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof


def claim(url: str, worker: str) -> list[tuple[str, int]]:
    with Client.connect(url, Role.EXECUTOR, name=worker) as client:
        return [(str(c.outbox_id), c.attempt_no) for c in client.claim(worker, 10)]


def in_old_snapshot(url: str, role: Role, level: str, meanwhile: Callable[[], object],
                    call: Callable[[Client], object]) -> str | None:
    """Begin at `level` and take the snapshot; let `meanwhile` commit; then run `call`: its SQLSTATE."""
    with Client.connect(url, role, name=f"snapshot-{level}", autocommit=False) as client:
        client.conn.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")
        client.conn.execute("SELECT 1")
        meanwhile()
        try:
            call(client)
        except psycopg.Error as exc:
            client.conn.rollback()
            return exc.sqlstate
        client.conn.commit()
    return None


@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
def test_each_call_fails_with_40001_and_writes_nothing(clean_database: Database, proof: ProofRecord,
                                                        level: str) -> None:
    url = clean_database.url
    outbox_id = str(api.enqueue_once(url, "instr-rr", "bank-rr", "key-rr")["outbox_id"])

    # claim: another worker claims the item after this transaction's snapshot.
    got = in_old_snapshot(url, Role.EXECUTOR, level, lambda: claim(url, "w-other"),
                          lambda client: client.claim("w-late", 10))
    proof.check(f"{level}: a claim of an item claimed since the snapshot", want="40001", have=got)
    before = api.ledger(url)

    # complete: repair requeues the claim after this transaction's snapshot.
    got = in_old_snapshot(url, Role.EXECUTOR, level, lambda: api.repair(url, 0),
                          lambda client: client.complete(outbox_id, 1, "DISPATCHED", worker_id="w-other"))
    proof.check(f"{level}: a completion of a claim repaired since the snapshot", want="40001", have=got)
    proof.check("the refused completion wrote nothing", want=len(before) + 1, have=len(api.ledger(url)))
    (_, attempt), = claim(url, "w-again")

    # repair: the claim's worker completes it after this transaction's snapshot.
    def complete_it() -> None:
        with Client.connect(url, Role.EXECUTOR, name="w-again") as client:
            client.complete(outbox_id, attempt, "DISPATCHED", worker_id="w-again")
    ledger_before = api.ledger(url)
    got = in_old_snapshot(url, Role.REPAIR, level, complete_it, lambda client: client.repair(0))
    proof.check(f"{level}: a repair of a claim completed since the snapshot", want="40001", have=got)
    proof.check("the ledger holds the completion only", want=len(ledger_before) + 1, have=len(api.ledger(url)))
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
