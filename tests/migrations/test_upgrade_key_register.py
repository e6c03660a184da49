"""Upgrading a database that holds items to the key register (tables/0006) keeps every key's item.

A database at release point 0005 (releases/0005/sql/) is given a live item and a terminal one,
then migrated to the current package: both keys are registered to their items, a repeated call
answers with the item, and the catalog equals that of a fresh install.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb

from runner.client import Client, Role
from runner.harness import releases
from runner.schema import migrate
from tests.conftest import Database
from tests.helpers import api, catalog, partitions
from tests.helpers.support import ProofRecord
from tests.migrations.test_migrate import empty_database  # noqa: F401  (fixture)

pytestmark = pytest.mark.proof

PAYLOAD = {"amount": "12.00", "currency": "EUR"}


def _seed_items_without_register(url: str) -> None:
    """Setup, as the owner: one live item and one terminal item, written as the old release
    left them (INSERT straight into the tables; there is no register yet)."""
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute("INSERT INTO payment_outbox.participant_outbox_sequences VALUES ('bank-a', 3)")
        owner.execute(
            "INSERT INTO payment_outbox.payment_outbox_pending (outbox_id, instruction_id, participant_id, sequence_id,"
            " idempotency_key, rail_type, payload, payload_sha256) VALUES ('00000000-0000-4000-8000-000000000001',"
            " 'upgrade-1', 'bank-a', 1, 'key-1', 'sepa', %(p)s, sha256(convert_to(%(p)s::text, 'UTF8')))",
            {"p": Jsonb(PAYLOAD)})
        owner.execute(
            "INSERT INTO payment_outbox.payment_outbox_attempts (outbox_id, instruction_id, participant_id,"
            " sequence_id, idempotency_key, rail_type, payload_sha256, item_created_at, attempt_no, state, claimed_at,"
            " completed_at, worker_id) SELECT '00000000-0000-4000-8000-000000000002', 'upgrade-2', 'bank-a', 2,"
            " 'key-2', 'sepa', sha256(convert_to(%(p)s::text, 'UTF8')), now(), n,"
            " s::payment_outbox.outbox_attempt_state,"
            " now(), CASE WHEN n = 2 THEN now() END, 'w1'"
            " FROM (VALUES (1, 'DISPATCHING'), (2, 'DISPATCHED')) AS v (n, s)",
            {"p": Jsonb(PAYLOAD)})


def test_upgrade_registers_the_keys_of_existing_items(empty_database: Database, database: Database,  # noqa: F811
                                                      proof: ProofRecord) -> None:
    url = empty_database.url
    migrate.migrate(url, say=lambda line: None, root=releases.point("0005").root)
    _seed_items_without_register(url)
    applied = migrate.migrate(url, say=lambda line: None)
    proof.observe(applied=[f.name for f in applied.files])
    proof.check("the upgrade applies the key register", want=True,
                have="tables/0006_payment_outbox_idempotency_keys.sql" in [f.name for f in applied.files])
    proof.check("check_invariants() is empty after the upgrade (every key registered to its item)",
                want=[], have=api.violations(url))
    with Client.connect(url, Role.INGEST, name="upgrade-ingest") as client:
        live, terminal, new = (client.enqueue(f"upgrade-{n}", "bank-a", f"key-{n}", "sepa", PAYLOAD) for n in (1, 2, 3))
    proof.check("a repeat of the live item's key answers with it",
                want=("00000000-0000-4000-8000-000000000001", 1, "PENDING"),
                have=(str(live.outbox_id), live.sequence_id, live.state))
    proof.check("a repeat of the terminal item's key answers with it",
                want=("00000000-0000-4000-8000-000000000002", 2, "DISPATCHED"),
                have=(str(terminal.outbox_id), terminal.sequence_id, terminal.state))
    proof.check("a new key gets the next sequence id", want=(3, "PENDING"), have=(new.sequence_id, new.state))
    # The seeded ledger had rows: converted, it is one partition (the documented difference).
    documented = partitions.legacy_partition_names(url)
    proof.check("the ledger was converted with its rows kept in the old table",
                want=True, have="payment_outbox_attempts_legacy" in documented)
    proof.check("the upgraded catalog equals a fresh install's but for the old table as a partition", want=[],
                have=partitions.undocumented(catalog.difference(catalog.snapshot(url), catalog.snapshot(database.url)),
                                             documented))
