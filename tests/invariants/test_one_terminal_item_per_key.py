"""What holds of "one terminal item per key" on the partitioned ledger (issue 25, item 6).

Before partitioning, a unique index on (instruction_id, idempotency_key) over terminal ledger rows
refused a second terminal item under one key. Every unique index of a partitioned table must hold
the partition key, so it became (instruction_id, idempotency_key, item_created_at): it still
refuses a second terminal attempt of one item (all rows of an item share item_created_at), but
no longer a second terminal item. What holds instead, proved here:

- the key register's primary key: enqueue never makes a second item for a key, however called
  (tests/enqueue/ prove it under concurrency); so a second item under one key is only the damage
  an upgrade from before tables/0010 could leave (two pending items, one key);
- check_invariants() names that damage (key_held_by_two_items, key_not_registered_to_item) while
  both items are pending, before either is claimed: it is an alert, not a refusal. The ledger
  itself takes both completions, as this proof shows.
"""

from __future__ import annotations

import psycopg
import pytest

from runner.worker import Worker
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.fakerail import FakeRail
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof

# The documented pre-0010 damage: a second pending item under a registered key, not in the register.
PLANT_SECOND_ITEM = """
INSERT INTO payment_outbox.payment_outbox_pending (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload, payload_sha256
)
SELECT gen_random_uuid(), p.instruction_id, p.participant_id, s.next_sequence_id, p.idempotency_key, p.rail_type,
       p.payload, p.payload_sha256
FROM payment_outbox.payment_outbox_pending AS p, payment_outbox.participant_outbox_sequences AS s
WHERE p.idempotency_key = 'tk-1' AND s.participant_id = p.participant_id
RETURNING outbox_id
"""


def test_a_second_item_under_one_key_is_named_not_refused(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    first = api.enqueue_once(url, "instr-tk-1", "bank-t", "tk-1")
    with psycopg.connect(url) as owner:  # setup: the damage, with the allocator moved past it
        second = owner.execute(PLANT_SECOND_ITEM).fetchone()[0]
        owner.execute("UPDATE payment_outbox.participant_outbox_sequences SET next_sequence_id = next_sequence_id + 1 "
                      "WHERE participant_id = 'bank-t'")
    proof.check("enqueue of the key answers with the registered item only", want=str(first["outbox_id"]),
                have=str(api.enqueue_once(url, "instr-tk-1", "bank-t", "tk-1")["outbox_id"]))
    proof.check("check_invariants() names the key and the unregistered item before either is claimed",
                want={"key_held_by_two_items", f"key_not_registered_to_item {second}"},
                have={v[0] if v[0] == "key_held_by_two_items" else f"{v[0]} {v[1]}" for v in api.violations(url)})
    with Worker.connected(url, "w-twice") as worker:
        done = worker.run_once(FakeRail(), batch_size=10)
    proof.check("the ledger takes both completions: no database refusal holds here",
                want=["DISPATCHED", "DISPATCHED"], have=sorted(c.state for c in done))
    proof.check("check_invariants() names the key held by two items", want=True,
                have="key_held_by_two_items" in {v[0] for v in api.violations(url)})
