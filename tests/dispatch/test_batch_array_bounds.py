"""complete_outbox_attempts with arrays that do not start at 1 (issue 25, item 5).

Its checks read the arrays by position from 1 while unnest() numbers the elements from 1 whatever
the array's bounds: with '[2:2]={...}' a 5,000-character error message and a 300-character rail
reference reached the ledger, and an outbox id given twice was PO014. Such arrays (and arrays of
more than one dimension) are now refused with PO017, and nothing is written.
"""

from __future__ import annotations

import pytest

from runner.worker import Worker
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.support import ProofRecord, sqlstate_of

pytestmark = pytest.mark.proof

CALL = ("SELECT * FROM payment_outbox.complete_outbox_attempts(%s, %s::uuid[], %s::integer[], "
        "%s::payment_outbox.outbox_attempt_state[], %s::text[], %s::text[], %s::text[])")


def test_arrays_not_starting_at_one_are_refused(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    api.enqueue_once(url, "instr-ab-1", "bank-a", "ab-1")
    with Worker.connected(url, "w-bounds") as worker:
        [item] = worker.claim(1)
        oid, no = str(item.outbox_id), item.attempt_no
        calls: dict[str, tuple[str | None, ...]] = {
            "a 5,000-character message at [2:2]": (f"[2:2]={{{oid}}}", f"[2:2]={{{no}}}", "[2:2]={DISPATCHED}",
                                                   "[2:2]={E}", "[2:2]={" + "m" * 5000 + "}", "[2:2]={r}"),
            "a 300-character reference at [2:2]": (f"[2:2]={{{oid}}}", f"[2:2]={{{no}}}", "[2:2]={DISPATCHED}",
                                                   None, None, "[2:2]={" + "r" * 300 + "}"),
            "one id twice at [2:3]": (f"[2:3]={{{oid},{oid}}}", f"[2:3]={{{no},{no}}}",
                                      "[2:3]={DISPATCHED,DISPATCHED}", None, None, None),
            "two dimensions": (f"{{{{{oid}}}}}", f"{{{{{no}}}}}", "{{DISPATCHED}}", None, None, None),
        }
        def call(args: tuple[str | None, ...]) -> str | None:
            return sqlstate_of(lambda: worker.conn.execute(CALL, ("w-bounds", *args)).fetchall())
        have = {name: call(args) for name, args in calls.items()}
    proof.check("each is PO017", want=dict.fromkeys(calls, "PO017"), have=have)
    proof.check("nothing was written: the item is still in flight, its ledger one DISPATCHING row",
                want=(1, ["DISPATCHING"]), have=(api.queue(url)["in_flight"], [r.state for r in api.ledger_rows(url)]))
