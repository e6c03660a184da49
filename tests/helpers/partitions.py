"""Helpers of the retention proofs: ledger partitions in the past, and items created in them.

Items are enqueued through the API and then backdated as the owner (their pending row's
created_at and their key's registered_at, which enqueue writes in one statement with the same
now()): time cannot be moved, so an item from 2020 is planted. The key register is append-only,
so its trigger is disabled for the one UPDATE, inside the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from runner.client import Client, Role
from runner.worker import Worker
from tests.helpers import api
from tests.helpers.fakerail import FakeRail
from tests.helpers.support import role_connection

BACKDATE_SQL = [
    "ALTER TABLE payment_outbox.payment_outbox_idempotency_keys "
    "DISABLE TRIGGER payment_outbox_idempotency_keys_append_only",
    "UPDATE payment_outbox.payment_outbox_idempotency_keys SET registered_at = %(at)s WHERE outbox_id = %(id)s",
    "ALTER TABLE payment_outbox.payment_outbox_idempotency_keys "
    "ENABLE TRIGGER payment_outbox_idempotency_keys_append_only",
    "UPDATE payment_outbox.payment_outbox_pending SET created_at = %(at)s WHERE outbox_id = %(id)s",
]


def month_partition(url: str, year: int, month: int) -> str:
    """As the owner: the ledger's partition of that (past) month, created unless it exists."""
    name = f"payment_outbox_attempts_{year:04d}_{month:02d}"
    start = datetime(year, month, 1).isoformat() + "+00"
    end = (datetime(year + month // 12, month % 12 + 1, 1)).isoformat() + "+00"
    with psycopg.connect(url, autocommit=True) as owner:  # setup: CREATE TABLE of a past month's partition
        if owner.execute("SELECT FROM payment_outbox.payment_outbox_attempt_partitions "
                         "WHERE partition_name = %s", (name,)).fetchone() is None:
            owner.execute("SELECT payment_outbox._create_attempt_partition("
                          "'payment_outbox_attempts', %s, %s, %s)", (name, start, end))
    return name


def backdated_item(url: str, key: str, at: str, participant: str = "bank-r") -> dict[str, Any]:
    """Enqueues `key` and backdates the item to `at`: it is pending, created then."""
    item = api.enqueue_once(url, f"instr-{key}", participant, key)
    with psycopg.connect(url) as owner:  # setup: the item's rows as an INSERT in 2020 would have written them
        for statement in BACKDATE_SQL:  # one transaction
            owner.execute(statement, {"at": at, "id": item["outbox_id"]} if "%(" in statement else None)
    return item


def dispatch_all(url: str) -> int:
    """Claims and completes DISPATCHED every due item; the number completed."""
    done = 0
    with Worker.connected(url, "retention-worker") as worker:
        rail = FakeRail()
        while claimed := worker.claim(100):
            for item in claimed:
                worker.complete(item, worker.dispatch(item, rail))
                done += 1
    return done


def partitions(url: str) -> dict[str, str]:
    """partition name -> state, as outbox_operator reads payment_outbox_attempt_partitions."""
    with Client.connect(url, Role.OPERATOR, name="operator") as client:
        return {p.partition_name: p.state for p in client.attempt_partitions()}


def table_exists(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"payment_outbox.{name}",)).fetchone()[0]


def legacy_partition_names(url: str) -> tuple[str, ...]:
    """The one documented way an upgraded-and-converted catalog differs from a fresh install's
    (docs/operations.md): the old table is the partition payment_outbox_attempts_legacy, of every
    item created before its bound, in place of the fresh install's monthly partitions of the months
    below the bound. Empty when the ledger was empty at conversion (the old table is dropped then)."""
    with role_connection(url, "outbox_auditor", name="partitions/auditor") as auditor:
        covered = [row[0] for row in auditor.execute(
            "SELECT 'payment_outbox_attempts_' || to_char(m AT TIME ZONE 'UTC', 'YYYY_MM') "
            "FROM payment_outbox.payment_outbox_attempt_partitions AS r, "
            "generate_series((date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month') "
            "AT TIME ZONE 'UTC', "
            "r.range_to - interval '1 month', interval '1 month') AS m "
            "WHERE r.partition_name = 'payment_outbox_attempts_legacy'")]
    return ("payment_outbox_attempts_legacy", *covered) if covered else ()


def undocumented(difference: list[str], documented: tuple[str, ...]) -> list[str]:
    """The lines of a catalog difference that name none of the documented partitions."""
    return [line for line in difference if not any(name in line for name in documented)]

