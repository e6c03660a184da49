"""Keys that look the same: the NFC and NFD forms of one text (issue 25, item 9).

Keys are compared byte for byte, so 'café' written precomposed (NFC, U+00E9) and decomposed (NFD,
e + U+0301) once made two items: two payments. Decision: refuse, not normalize. A new key whose
instruction_id or idempotency_key is not in NFC is refused with PO037 and writes nothing, in a
single call and in a payment file; the caller normalizes (NFC) and calls again. Normalizing in the
database would change a key's identity silently: a repeat of a key stored before this release in
another form would then miss its item and make a second one. For the same reason a repeat of a
key already registered (as enqueued before this release, in any form) still answers with its item.
"""

from __future__ import annotations

import unicodedata

import psycopg
import pytest

from runner.client import Client, FileItem, Role
from tests.conftest import Database
from tests.helpers.support import ProofRecord, sqlstate_of

pytestmark = pytest.mark.proof

NFC = unicodedata.normalize("NFC", "café")
NFD = unicodedata.normalize("NFD", "café")


def written(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as owner:
        row = owner.execute("SELECT (SELECT count(*) FROM payment_outbox.payment_outbox_idempotency_keys), "
                            "(SELECT count(*) FROM payment_outbox.payment_outbox_pending)").fetchone()
    assert row is not None
    return row[0], row[1]


def test_single_calls(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        first = client.enqueue("instr-u", "bank-u", f"k-{NFC}", "sepa", {"a": 1})
        before = written(url)
        refused = [sqlstate_of(lambda: client.enqueue("instr-u", "bank-u", f"k-{NFD}", "sepa", {"a": 1})),
                   sqlstate_of(lambda: client.enqueue(f"instr-{NFD}", "bank-u", "k-plain", "sepa", {"a": 1}))]
        proof.check("an NFD idempotency key or instruction id is PO037 and writes nothing",
                    want=(["PO037", "PO037"], before), have=(refused, written(url)))
        again = client.enqueue("instr-u", "bank-u", f"k-{NFC}", "sepa", {"a": 1})
        proof.check("the NFC key repeats as before", want=first.outbox_id, have=again.outbox_id)


def test_payment_files(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    good = FileItem("instr-f", "bank-u", f"f-{NFC}", "sepa", {"a": 1})
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        before = written(url)
        mixed = sqlstate_of(lambda: client.enqueue_batch([good, FileItem("instr-f", "bank-u", f"f-{NFD}", "sepa",
                                                                          {"a": 1})]))
        proof.check("a file with the NFD form beside the NFC one is PO037 and writes nothing",
                    want=("PO037", before), have=(mixed, written(url)))
        try:
            client.enqueue_batch([FileItem("instr-f", "bank-u", "f-plain", "sepa", {"a": 1}),
                                  FileItem("instr-f", "bank-u", f"f-{NFD}", "sepa", {"a": 1})])
            message = ""
        except psycopg.Error as exc:
            message = f"{exc.sqlstate} {exc}"
        proof.check("the error names the item", want=True, have=message.startswith("PO037 payment file item 2:"))
        proof.check("the NFC file goes in", want=1, have=len(client.enqueue_batch([good])))


def test_a_key_registered_before_in_another_form_still_repeats(clean_database: Database,
                                                               proof: ProofRecord) -> None:
    url = clean_database.url
    with psycopg.connect(url) as owner:  # setup: an item of an NFD key, as enqueue wrote it before this release
        outbox_id = owner.execute("SELECT gen_random_uuid()").fetchone()[0]
        owner.execute("INSERT INTO payment_outbox.participant_outbox_sequences (participant_id, next_sequence_id) "
                      "VALUES ('bank-o', 2)")
        owner.execute("INSERT INTO payment_outbox.payment_outbox_idempotency_keys (instruction_id, idempotency_key, "
                      "outbox_id) VALUES ('instr-o', %s, %s)", (f"o-{NFD}", outbox_id))
        owner.execute("INSERT INTO payment_outbox.payment_outbox_pending (outbox_id, instruction_id, participant_id, "
                      "sequence_id, idempotency_key, rail_type, payload, payload_sha256) VALUES (%s, 'instr-o', "
                      "'bank-o', 1, %s, 'sepa', '{\"a\": 1}', payment_outbox._payload_sha256('{\"a\": 1}'))",
                      (outbox_id, f"o-{NFD}"))
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        repeat = client.enqueue("instr-o", "bank-o", f"o-{NFD}", "sepa", {"a": 1})
        files = client.enqueue_batch([FileItem("instr-o", "bank-o", f"o-{NFD}", "sepa", {"a": 1})])
    proof.check("a repeat of the registered NFD key answers with its item, alone and in a file",
                want=(outbox_id, outbox_id), have=(repeat.outbox_id, files[0].outbox_id))
