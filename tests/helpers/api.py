"""The payment API as the fault proofs call it: each call on a connection acting as its runtime role."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.helpers.support import role_connection

ENQUEUE = ("SELECT outbox_id, sequence_id, created_at, state "
           "FROM payment_outbox.enqueue_payment_outbox(%s, %s, %s, %s, %s)")


def enqueue(conn: psycopg.Connection, instruction_id: str, participant_id: str, key: str,
            payload: dict[str, Any] | None = None, rail_type: str = "sepa") -> dict[str, Any]:
    """On a connection acting as outbox_ingest."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(ENQUEUE, (instruction_id, participant_id, key, rail_type,
                                     Jsonb(payload if payload is not None else {"key": key}))).fetchone()


def enqueue_once(url: str, instruction_id: str, participant_id: str, key: str, **kwargs: Any) -> dict[str, Any]:
    with role_connection(url, "outbox_ingest", name="ingest") as conn:
        return enqueue(conn, instruction_id, participant_id, key, **kwargs)


def repair(url: str, threshold_seconds: int = 0, batch_size: int = 100) -> list[dict[str, Any]]:
    with role_connection(url, "outbox_repair", name="repair") as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM payment_outbox.repair_zombie_attempts(%s, %s)",
                           (threshold_seconds, batch_size)).fetchall()


def violations(url: str) -> list[tuple[Any, ...]]:
    """check_invariants(), as outbox_readonly: empty when the outbox is consistent."""
    with role_connection(url, "outbox_readonly", name="invariants") as conn:
        return conn.execute("SELECT * FROM payment_outbox.check_invariants()").fetchall()


def ledger(url: str) -> list[tuple[Any, ...]]:
    """Every ledger row, as outbox_auditor: (outbox_id, attempt_no, state, worker_id, error_code)."""
    with role_connection(url, "outbox_auditor", name="auditor") as conn:
        return conn.execute("SELECT outbox_id, attempt_no, state::text, worker_id, error_code "
                            "FROM payment_outbox.payment_outbox_attempts ORDER BY outbox_id, attempt_no").fetchall()


def queue(url: str) -> dict[str, Any]:
    """The queue as outbox_readonly sees it: the metrics row and the in-flight items."""
    with role_connection(url, "outbox_readonly", name="queue") as conn:
        metrics = conn.execute("SELECT queue_depth, due_now, in_flight FROM payment_outbox.payment_outbox_queue_metrics"
                               ).fetchone()
        in_flight = conn.execute("SELECT outbox_id, attempt_no, worker_id FROM payment_outbox.payment_outbox_in_flight "
                                 "ORDER BY outbox_id").fetchall()
    return {"queue_depth": metrics[0], "due_now": metrics[1], "in_flight": metrics[2], "in_flight_items": in_flight}


def server_clock(url: str) -> Any:
    """clock_timestamp() on the server: to tell which side of a fault an item was created on."""
    with role_connection(url, "outbox_readonly", name="clock") as conn:
        return conn.execute("SELECT clock_timestamp()").fetchone()[0]
