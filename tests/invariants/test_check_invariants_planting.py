"""check_invariants() names each kind of violation when one is planted by hand, and none on a
healthy database.

Each test starts from empty tables, builds a healthy outbox through the API as the runtime
roles (items pending, in flight, retried and dispatched, participant bank-h), checks that it
reports nothing, then plants one violation as the owner (participant bank-p) and asserts that
exactly the planted kind is reported, naming the planted item or participant. The kinds are read
from sql/functions/check_invariants.sql, so a new kind without a plant here fails.

Plants INSERT rows; the ledger's UPDATE/DELETE trigger is never needed. Two kinds are forbidden
by the schema itself: a second terminal attempt of one item is refused by the unique partial
indexes on the ledger, so this module works on a scratch database of its own in which those two
indexes are dropped (check_invariants() keeps the check as a second line of defence).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from runner.client import Client, Role
from runner.schema.package import sql_root
from tests.conftest import (
    Database,
    Server,
    create_migrated_database,
    drop_database,
    truncate_package_tables,
)
from tests.helpers import api
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof

KINDS = re.findall(r"'([a-z_]+)' AS invariant", (sql_root() / "functions" / "check_invariants.sql").read_text())
PARTICIPANT = "bank-p"
INSTRUCTION = "instr-p"
PAYLOAD = '{"amount": "1.00"}'


def item_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def allocator(next_sequence_id: int) -> str:
    return (f"INSERT INTO payment_outbox.participant_outbox_sequences (participant_id, next_sequence_id) "
            f"VALUES ('{PARTICIPANT}', {next_sequence_id})")


def register(key: str, n: int) -> str:
    return (f"INSERT INTO payment_outbox.payment_outbox_idempotency_keys (instruction_id, idempotency_key, outbox_id) "
            f"VALUES ('{INSTRUCTION}', '{key}', '{item_id(n)}')")


def pending(n: int, sequence_id: int, key: str, *, attempt_count: int = 0, claimed: bool = False,
            quarantined: bool = False, attempt_base: int = 0, created_at: str = "now()") -> str:
    claim = f"{attempt_count}, 'worker-p', now()" if claimed else "NULL, NULL, NULL"
    quarantine = "'infinity', now(), 'planted'" if quarantined else "now(), NULL, NULL"
    return f"""INSERT INTO payment_outbox.payment_outbox_pending (
                   outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload,
                   payload_sha256, attempt_count, attempt_no, worker_id, claimed_at, next_attempt_at,
                   quarantined_at, quarantine_reason, attempt_base, created_at)
               VALUES ('{item_id(n)}', '{INSTRUCTION}', '{PARTICIPANT}', {sequence_id}, '{key}', 'sepa',
                       '{PAYLOAD}'::jsonb, sha256(convert_to('{PAYLOAD}'::jsonb::text, 'UTF8')), {attempt_count},
                       {claim}, {quarantine}, {attempt_base}, {created_at})"""


def attempts(n: int, sequence_id: int, key: str, *states: tuple[int, str]) -> list[str]:
    return [f"""INSERT INTO payment_outbox.payment_outbox_attempts (
                    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
                    payload_sha256, item_created_at, attempt_no, state, claimed_at, worker_id)
                VALUES ('{item_id(n)}', '{INSTRUCTION}', '{PARTICIPANT}', {sequence_id}, '{key}', 'sepa',
                        sha256(convert_to('{PAYLOAD}'::jsonb::text, 'UTF8')), now(), {number}, '{state}', now(),
                        'worker-p')""" for number, state in states]


DISPATCHED_TWICE = ((1, "DISPATCHING"), (2, "DISPATCHED"))


@dataclass(frozen=True)
class Plant:
    statements: list[str]
    why: str
    also: frozenset[str] = frozenset()  # kinds the same state necessarily violates as well


# The registry row of a planted unfinished conversion (the registry is not emptied between plants).
PLANTED_CONVERSION = "payment_outbox_attempts_planted_legacy"
PLANTS = {
    "sequence_duplicate": Plant(
        [allocator(2), pending(1, 1, "k1"), register("k1", 1), *attempts(2, 1, "k2", *DISPATCHED_TWICE),
         register("k2", 2)],
        "a pending item and a dispatched one share sequence id 1"),
    "sequence_gap": Plant(
        [allocator(4), pending(1, 1, "k1"), register("k1", 1), pending(3, 3, "k3"), register("k3", 3)],
        "sequence ids 1 and 3, no 2"),
    "allocator_out_of_step": Plant(
        [allocator(5), pending(1, 1, "k1"), register("k1", 1)],
        "one item, the allocator would hand out 5 next"),
    "allocator_missing": Plant(
        [pending(1, 1, "k1"), register("k1", 1)],
        "an item of a participant without an allocator row"),
    "key_held_by_two_items": Plant(
        [allocator(3), pending(1, 1, "k1"), register("k1", 1), *attempts(2, 2, "k1", *DISPATCHED_TWICE)],
        "a pending item and a dispatched one under one key",
        # The register holds one item per key, so the second item's key is registered to the first.
        also=frozenset({"key_not_registered_to_item"})),
    "key_not_registered_to_item": Plant(
        [allocator(2), pending(1, 1, "k1")],
        "an item whose key is missing from the register"),
    "multiple_terminal_attempts": Plant(
        [allocator(2), register("k1", 1), *attempts(1, 1, "k1", (1, "DISPATCHING"), (2, "DISPATCHED"), (3, "FAILED"))],
        "DISPATCHED, then FAILED (the unique terminal indexes are dropped in this scratch database)"),
    "attempt_numbers_not_increasing": Plant(
        [allocator(2), register("k1", 1), *attempts(1, 1, "k1", (1, "DISPATCHING"), (3, "DISPATCHED"))],
        "attempts numbered 1 and 3"),
    "attempt_after_terminal": Plant(
        [allocator(2), register("k1", 1),
         *attempts(1, 1, "k1", (1, "DISPATCHING"), (2, "DISPATCHED"), (3, "DISPATCHING"))],
        "a DISPATCHING attempt after DISPATCHED"),
    "in_flight_without_dispatching_attempt": Plant(
        [allocator(2), register("k1", 1), pending(1, 1, "k1", attempt_count=1, claimed=True)],
        "a claim on attempt 1 with no ledger row"),
    "dispatching_attempt_without_claim": Plant(
        [allocator(2), register("k1", 1), pending(1, 1, "k1", attempt_count=1),
         *attempts(1, 1, "k1", (1, "DISPATCHING"))],
        "a DISPATCHING ledger row, the pending row holds no claim"),
    "terminal_item_in_pending": Plant(
        [allocator(2), register("k1", 1), pending(1, 1, "k1", attempt_count=2),
         *attempts(1, 1, "k1", *DISPATCHED_TWICE)],
        "a dispatched item still in pending"),
    "quarantined_without_quarantined_attempt": Plant(
        [allocator(2), register("k1", 1), pending(1, 1, "k1", attempt_count=2, quarantined=True),
         *attempts(1, 1, "k1", (1, "DISPATCHING"), (2, "RETRYABLE"))],
        "a quarantined pending row whose latest ledger row is RETRYABLE"),
    "quarantined_attempt_not_held": Plant(
        [allocator(2), register("k1", 1), pending(1, 1, "k1", attempt_count=2),
         *attempts(1, 1, "k1", (1, "DISPATCHING"), (2, "QUARANTINED"))],
        "a QUARANTINED latest ledger row, the pending row not quarantined"),
    "attempt_base_not_latest_release": Plant(
        [allocator(2), register("k1", 1), pending(1, 1, "k1", attempt_count=2, attempt_base=2),
         *attempts(1, 1, "k1", (1, "DISPATCHING"), (2, "RETRYABLE"))],
        "an attempt budget counted from attempt 2, which is no RELEASED row"),
    "key_without_item": Plant(
        [register("k1", 1)],
        "a registered key whose item has neither a pending nor a ledger row"),
    "item_lost": Plant(
        [allocator(2), register("k1", 1), *attempts(1, 1, "k1", (1, "DISPATCHING"))],
        "a claimed item that is neither pending nor terminal"),
    "ledger_partition_missing": Plant(
        [allocator(2), pending(1, 1, "k1", created_at="now() + interval '10 years'"), register("k1", 1)],
        "a pending item created in a month the partitioned ledger has no partition for"),
    "ledger_conversion_unfinished": Plant(
        [f"INSERT INTO payment_outbox.payment_outbox_attempt_partitions (partition_name, range_from, range_to, state) "
         f"VALUES ('{PLANTED_CONVERSION}', NULL, now() + interval '40 days', 'converting')"],
        "a conversion to partitions recorded as under way, its CHECK's bound 40 days away"),
}


@pytest.fixture(scope="module")
def plantable(server: Server) -> Iterator[Database]:
    """A scratch database of this module's own, without the ledger's unique terminal indexes."""
    created = create_migrated_database(server, prefix="outbox_planting")
    try:
        with psycopg.connect(created.url, autocommit=True) as owner:
            owner.execute("DROP INDEX payment_outbox.payment_outbox_attempts_outbox_id_terminal_key")
            owner.execute("DROP INDEX payment_outbox.payment_outbox_attempts_idempotency_terminal_key")
        yield created
    finally:
        drop_database(server, created.name)


def build_healthy_outbox(url: str) -> None:
    """Through the API, as the runtime roles: pending, in flight, retried and dispatched items."""
    truncate_package_tables(url)
    with psycopg.connect(url, autocommit=True) as owner:  # the registry is not emptied with the data
        owner.execute("DELETE FROM payment_outbox.payment_outbox_attempt_partitions WHERE partition_name = %s",
                      (PLANTED_CONVERSION,))
    with Client.connect(url, Role.INGEST, name="planting-ingest") as client:
        for key in ("h1", "h2", "h3", "h4"):
            client.enqueue("instr-h", "bank-h", key, "sepa", json.loads(PAYLOAD))
    with Client.connect(url, Role.EXECUTOR, name="planting-worker") as client:
        claimed = client.claim("w-h", 3)
        assert len(claimed) == 3, f"claim: have {len(claimed)} items, want 3"
        client.complete(claimed[0].outbox_id, claimed[0].attempt_no, "DISPATCHED", worker_id="w-h")
        client.complete(claimed[1].outbox_id, claimed[1].attempt_no, "RETRYABLE", worker_id="w-h")


def violations(url: str) -> list[tuple[str, str | None, str | None, str]]:
    return sorted(((v[0], None if v[1] is None else str(v[1]), v[2], v[3]) for v in api.violations(url)),
                  key=lambda row: (row[0], row[3]))


def test_every_reported_kind_has_a_plant(proof: ProofRecord) -> None:
    proof.observe(kinds=KINDS)
    proof.check("check_invariants.sql reports kinds", want=True, have=len(KINDS) >= 10)
    proof.check("every kind check_invariants.sql reports is planted here", want=[],
                have=[kind for kind in KINDS if kind not in PLANTS])
    proof.check("every plant names a kind check_invariants.sql reports", want=[],
                have=[kind for kind in PLANTS if kind not in KINDS])


def test_a_healthy_outbox_reports_nothing(plantable: Database, proof: ProofRecord) -> None:
    build_healthy_outbox(plantable.url)
    proof.check("check_invariants() on a healthy outbox", want=[], have=violations(plantable.url))


@pytest.mark.parametrize("kind", KINDS)
def test_a_planted_violation_is_named(plantable: Database, kind: str, proof: ProofRecord) -> None:
    plant = PLANTS.get(kind)
    proof.check(f"a plant exists for {kind}", want=True, have=plant is not None)
    assert plant is not None
    build_healthy_outbox(plantable.url)
    proof.check("the outbox is healthy before the plant", want=[], have=violations(plantable.url))
    with psycopg.connect(plantable.url) as owner:  # one transaction: seed the violation as the owner
        for statement in plant.statements:
            assert statement.lstrip().startswith("INSERT INTO payment_outbox."), "a plant only inserts rows"
            owner.execute(statement)
    found = violations(plantable.url)
    proof.observe(plant=plant.why, reported=found)
    proof.check(f"planted {kind} ({plant.why}) is reported, and only what the plant implies",
                want=sorted({kind} | plant.also), have=sorted({row[0] for row in found}))
    planted_ids = {item_id(n) for n in range(1, 10)}
    proof.check("every reported row names the planted item, participant or key (or, for a kind about the "
                "whole ledger, the planted registry row)", want=[],
                have=[row for row in found if row[1] not in planted_ids and row[2] != PARTICIPANT
                      and INSTRUCTION not in row[3] and PLANTED_CONVERSION not in row[3]])
