"""What the Phase 5 concurrency proofs share: their knobs, the payment API calls they make on a
session's connection, and the check every proof ends with."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from runner.client import ClaimedItem, Client, Role
from tests.helpers import api
from tests.helpers.support import ProofRecord

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

    @classmethod
    def of(cls, item: ClaimedItem) -> Instruction:
        """The arguments a claimed item was enqueued with."""
        return cls(item.instruction_id, item.participant_id, item.idempotency_key, item.rail_type, item.payload)


@dataclass(frozen=True)
class Enqueued:
    outbox_id: str
    sequence_id: int
    state: str


def enqueue(conn: psycopg.Connection, call: Instruction) -> Enqueued:
    """enqueue_payment_outbox on a connection acting as outbox_ingest."""
    row = Client(conn).enqueue(call.instruction_id, call.participant_id, call.idempotency_key, call.rail_type,
                               call.payload)
    return Enqueued(str(row.outbox_id), row.sequence_id, row.state)


def claim(conn: psycopg.Connection, worker_id: str, batch_size: int) -> list[ClaimedItem]:
    """claim_outbox_batch on a connection acting as outbox_executor."""
    return Client(conn).claim(worker_id, batch_size)


def enqueue_and_claim(url: str, call: Instruction, worker_id: str, name: str) -> ClaimedItem:
    """Seeds one item through the API (as outbox_ingest) and claims it (as outbox_executor)."""
    with Client.connect(url, Role.INGEST, name=f"{name}/seed") as client:
        enqueued = enqueue(client.conn, call)
    with Client.connect(url, Role.EXECUTOR, name=f"{name}/claim") as client:
        (claimed,) = claim(client.conn, worker_id, 10)
    assert str(claimed.outbox_id) == enqueued.outbox_id, f"claimed {claimed.outbox_id}, want {enqueued.outbox_id}"
    return claimed


def complete(conn: psycopg.Connection, outbox_id: UUID | str, attempt_no: int, state: str,
             worker_id: str) -> tuple[int, str]:
    """complete_outbox_attempt on a connection acting as outbox_executor, as the worker that claimed
    the attempt: (attempt_no, state)."""
    row = Client(conn).complete(outbox_id, attempt_no, state, worker_id=worker_id)
    return row.attempt_no, row.state


def queue_depth(url: str) -> int:
    return int(api.queue(url)["queue_depth"])


def ledger(url: str, outbox_id: str) -> list[tuple[int, str]]:
    """(attempt_no, state) of one item's ledger rows, read as outbox_auditor."""
    return [(r.attempt_no, r.state) for r in api.ledger_rows(url, outbox_id)]


def check_invariants_empty(url: str, proof: ProofRecord) -> None:
    """The check every Phase 5 proof ends with: check_invariants(), as outbox_readonly, has no rows."""
    proof.check("check_invariants() returns no rows", want=[], have=[list(v) for v in api.violations(url)])
