"""Zombie claims for the repair proofs: seeded as the owner, observed through runtime roles, repaired
by the real `outbox repair` entry point in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from runner.client import Client, Role
from tests.helpers import api

OUTBOX = Path(sys.executable).parent / "outbox"  # the console script pyproject.toml installs
PAYLOAD = {"amount": "10.00", "currency": "EUR"}


@dataclass(frozen=True)
class Seeded:
    outbox_id: str
    instruction_id: str
    participant_id: str
    idempotency_key: str
    worker_id: str
    attempt_no: int  # the stale DISPATCHING attempt: the item's latest ledger row


def seed_stale_claim(url: str, run_id: str, *, claimed_seconds_ago: int = 10, attempt_no: int = 1) -> Seeded:
    """As the owner (no runtime role may write a claim into the past): a new item whose latest
    ledger row is a DISPATCHING attempt claimed `claimed_seconds_ago` seconds ago, the pending row's
    claim matching it. Earlier attempts, if any, alternate DISPATCHING/RETRYABLE as a real history
    does, so check_invariants() holds."""
    assert attempt_no % 2 == 1, "a DISPATCHING attempt has an odd attempt_no in a real history"
    item = Seeded(outbox_id=str(uuid.uuid4()), instruction_id=f"instr-{run_id}", participant_id=f"bank-{run_id}",
                  idempotency_key=f"key-{run_id}", worker_id=f"worker-{run_id}", attempt_no=attempt_no)
    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute("INSERT INTO payment_outbox.participant_outbox_sequences (participant_id, next_sequence_id) "
                     "VALUES (%s, 2)", (item.participant_id,))
        conn.execute(
            """INSERT INTO payment_outbox.payment_outbox_pending (
                   outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload,
                   payload_sha256, attempt_count, next_attempt_at, created_at, attempt_no, worker_id, claimed_at)
               VALUES (%(id)s, %(instr)s, %(bank)s, 1, %(key)s, 'sepa', %(payload)s,
                   sha256(convert_to(%(payload)s::text, 'UTF8')), %(n)s, now() - interval '1 minute',
                   now() - interval '1 minute', %(n)s, %(worker)s, now() - make_interval(secs => %(ago)s))""",
            {"id": item.outbox_id, "instr": item.instruction_id, "bank": item.participant_id,
             "key": item.idempotency_key, "payload": Jsonb(PAYLOAD), "n": attempt_no, "worker": item.worker_id,
             "ago": claimed_seconds_ago})
        conn.execute(
            """INSERT INTO payment_outbox.payment_outbox_idempotency_keys (instruction_id, idempotency_key, outbox_id)
               VALUES (%s, %s, %s)""", (item.instruction_id, item.idempotency_key, item.outbox_id))
        conn.execute(
            """INSERT INTO payment_outbox.payment_outbox_attempts (
                   outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
                   payload_sha256, item_created_at, attempt_no, state, claimed_at, worker_id)
               SELECT p.outbox_id, p.instruction_id, p.participant_id, p.sequence_id, p.idempotency_key,
                   p.rail_type, p.payload_sha256, p.created_at, n.attempt_no,
                   CASE WHEN n.attempt_no %% 2 = 1 THEN 'DISPATCHING' ELSE 'RETRYABLE'
                   END::payment_outbox.outbox_attempt_state,
                   CASE WHEN n.attempt_no = p.attempt_no THEN p.claimed_at ELSE p.created_at END, p.worker_id
               FROM payment_outbox.payment_outbox_pending AS p
               CROSS JOIN generate_series(1, p.attempt_no) AS n (attempt_no)
               WHERE p.outbox_id = %s""", (item.outbox_id,))
        conn.commit()
    return item


@dataclass
class RepairRun:
    returncode: int
    lines: list[dict[str, Any]]
    stderr: str
    stdout: str

    def items(self, outbox_id: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("outbox_id") == outbox_id]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == event]


def run_repair(url: str, *args: str, threshold: str | None = "1", timeout: float = 60) -> RepairRun:
    """`outbox repair ARGS` in a subprocess: DATABASE_URL is the test database, and the threshold
    reaches it only through ZOMBIE_THRESHOLD_SECONDS in its environment."""
    env = {key: value for key, value in os.environ.items() if key != "ZOMBIE_THRESHOLD_SECONDS"}
    env["DATABASE_URL"] = url
    if threshold is not None:
        env["ZOMBIE_THRESHOLD_SECONDS"] = threshold
    done = subprocess.run([str(OUTBOX), "repair", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return RepairRun(returncode=done.returncode, lines=lines, stderr=done.stderr, stdout=done.stdout)


def ledger(url: str, outbox_id: str) -> list[tuple[int, str, str | None]]:
    """(attempt_no, state, worker_id) of every ledger row of the item, read as outbox_auditor."""
    return [(r.attempt_no, r.state, r.worker_id) for r in api.ledger_rows(url, outbox_id)]


def queue(url: str) -> dict[str, Any]:
    """The queue gauges, read as outbox_readonly."""
    return {key: value for key, value in api.queue(url).items() if key != "in_flight_items"}


def probe_claim(url: str) -> list[dict[str, Any]]:
    """What a worker would be handed now, as outbox_executor, rolled back: shows which items are
    due and unclaimed and their attempt_count (the claim returns attempt_count + 1), changing nothing."""
    with Client.connect(url, Role.EXECUTOR, name="probe claim", autocommit=False) as client:
        rows = [{"outbox_id": str(item.outbox_id), "attempt_no": item.attempt_no,
                 "attempt_count_before": item.attempt_count - 1} for item in client.claim("probe", 1000)]
        client.conn.rollback()
    return rows
