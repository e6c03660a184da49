"""A registered key whose item has vanished (issue 12, finding 6): check_invariants() names it, and
enqueue refuses the key with a SQLSTATE of the package's own, PO004, writing nothing.

The state cannot be reached through the API (the key and its item are written in one
transaction); it is planted here as the owner, as damage by hand would leave it.
"""

from __future__ import annotations

import psycopg
import pytest

from runner.client import Client, Role
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.support import ProofRecord, sqlstate_of

pytestmark = pytest.mark.proof

ITEM = "00000000-0000-4000-8000-00000000dead"


def test_a_key_without_item_is_named_and_refused(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    with psycopg.connect(url, autocommit=True) as owner:  # setup: the damage
        owner.execute("INSERT INTO payment_outbox.payment_outbox_idempotency_keys (instruction_id, idempotency_key, "
                      "outbox_id) VALUES ('instr-v', 'key-v', %s)", (ITEM,))
    proof.check("check_invariants() names the key", want=[("key_without_item", ITEM)],
                have=[(row[0], str(row[1])) for row in api.violations(url)])
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        proof.check("enqueue of the key is refused with PO004", want="PO004",
                    have=sqlstate_of(lambda: client.enqueue("instr-v", "bank-v", "key-v", "sepa", {})))
    proof.check("nothing was written", want={"queue_depth": 0, "due_now": 0, "in_flight": 0, "in_flight_items": []},
                have=api.queue(url))
    with psycopg.connect(url, autocommit=True) as owner:  # setup: repair the damage for the next proof
        owner.execute("TRUNCATE payment_outbox.payment_outbox_idempotency_keys")
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
