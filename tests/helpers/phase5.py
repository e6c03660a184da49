"""What the Phase 5 concurrency proofs share: their knobs, the payment API calls they make on a
session's connection, and the check every proof ends with."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.helpers.support import ProofRecord, role_connection

DEFAULT_STORM_SIZE = 32
DEFAULT_SEED = 20260405
DEFAULT_MIXED_KEYS = 2000


def _positive_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    value = int(text)
    if value < 2 and name == "PHASE5_STORM_SIZE":
        raise ValueError(f"{name} must be at least 2 for a storm, got {value}")
    if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def storm_size() -> int:
    """N, the number of concurrent sessions of a storm (PHASE5_STORM_SIZE, default 32)."""
    return _positive_int("PHASE5_STORM_SIZE", DEFAULT_STORM_SIZE)


def seed() -> int:
    """Seed of the mixed storm's workload (PHASE5_SEED); the same seed gives the same calls."""
    return _positive_int("PHASE5_SEED", DEFAULT_SEED)


def mixed_keys() -> int:
    """Distinct idempotency keys of the mixed storm (PHASE5_MIXED_KEYS, default 2000)."""
    return _positive_int("PHASE5_MIXED_KEYS", DEFAULT_MIXED_KEYS)


@dataclass(frozen=True)
class Instruction:
    """The arguments of one enqueue call."""

    instruction_id: str
    participant_id: str
    idempotency_key: str
    rail_type: str
    payload: dict[str, Any]

    def differing(self, **changes: Any) -> Instruction:
        return Instruction(**{**self.__dict__, **changes})

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @property
    def key(self) -> tuple[str, str]:
        return (self.instruction_id, self.idempotency_key)


@dataclass(frozen=True)
class Enqueued:
    outbox_id: str
    sequence_id: int
    state: str


@dataclass(frozen=True)
class Claimed:
    outbox_id: str
    attempt_no: int
    instruction_id: str
    participant_id: str
    sequence_id: int
    idempotency_key: str
    rail_type: str
    payload: dict[str, Any]

    def instruction(self) -> Instruction:
        return Instruction(self.instruction_id, self.participant_id, self.idempotency_key, self.rail_type,
                           self.payload)


def enqueue(conn: psycopg.Connection, call: Instruction) -> Enqueued:
    """enqueue_payment_outbox on a connection acting as outbox_ingest."""
    row = conn.execute(
        "SELECT outbox_id::text, sequence_id, state FROM payment_outbox.enqueue_payment_outbox(%s, %s, %s, %s, %s)",
        (call.instruction_id, call.participant_id, call.idempotency_key, call.rail_type, Jsonb(call.payload)),
    ).fetchone()
    return Enqueued(*row)


def claim(conn: psycopg.Connection, worker_id: str, batch_size: int) -> list[Claimed]:
    """claim_outbox_batch on a connection acting as outbox_executor."""
    rows = conn.execute(
        "SELECT outbox_id::text, attempt_no, instruction_id, participant_id, sequence_id, idempotency_key, "
        "rail_type, payload FROM payment_outbox.claim_outbox_batch(%s, %s)",
        (worker_id, batch_size),
    ).fetchall()
    return [Claimed(*row) for row in rows]


def enqueue_and_claim(url: str, call: Instruction, worker_id: str, name: str) -> Claimed:
    """Seeds one item through the API (as outbox_ingest) and claims it (as outbox_executor)."""
    with role_connection(url, "outbox_ingest", name=f"{name}/seed") as conn:
        enqueued = enqueue(conn, call)
    with role_connection(url, "outbox_executor", name=f"{name}/claim") as conn:
        (claimed,) = claim(conn, worker_id, 10)
    assert claimed.outbox_id == str(enqueued.outbox_id), f"claimed {claimed.outbox_id}, want {enqueued.outbox_id}"
    return claimed


def complete(conn: psycopg.Connection, outbox_id: str, attempt_no: int, state: str) -> tuple[int, str]:
    """complete_outbox_attempt on a connection acting as outbox_executor: (attempt_no, state)."""
    row = conn.execute(
        "SELECT attempt_no, state::text FROM payment_outbox.complete_outbox_attempt(%s, %s, %s)",
        (outbox_id, attempt_no, state),
    ).fetchone()
    return row[0], row[1]


def queue_depth(url: str) -> int:
    with role_connection(url, "outbox_readonly", name="phase5/metrics") as conn:
        return conn.execute("SELECT queue_depth FROM payment_outbox.payment_outbox_queue_metrics").fetchone()[0]


def ledger(url: str, outbox_id: str) -> list[tuple[int, str]]:
    """(attempt_no, state) of one item's ledger rows, read as outbox_auditor."""
    with role_connection(url, "outbox_auditor", name="phase5/ledger") as conn:
        return conn.execute(
            "SELECT attempt_no, state::text FROM payment_outbox.payment_outbox_attempts "
            "WHERE outbox_id = %s ORDER BY attempt_no",
            (outbox_id,),
        ).fetchall()


def check_invariants_empty(url: str, proof: ProofRecord) -> None:
    """The check every Phase 5 proof ends with: check_invariants(), as outbox_readonly, has no rows."""
    with role_connection(url, "outbox_readonly", name="phase5/invariants") as conn:
        violations = conn.execute("SELECT * FROM payment_outbox.check_invariants()").fetchall()
    proof.check("check_invariants() returns no rows", want=[], have=[list(v) for v in violations])
