"""One-shot calls of the payment API by URL, for the proofs: each opens a connection acting as the
call's runtime role and goes through runner.client, the one client of the SQL API."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import psycopg

from runner.client import Client, LedgerRow, Role


def enqueue(conn: psycopg.Connection, instruction_id: str, participant_id: str, key: str,
            payload: dict[str, Any] | None = None, rail_type: str = "sepa") -> dict[str, Any]:
    """On a connection acting as outbox_ingest: the enqueued row as a dict."""
    return asdict(Client(conn).enqueue(instruction_id, participant_id, key, rail_type,
                                       payload if payload is not None else {"key": key}))


def enqueue_once(url: str, instruction_id: str, participant_id: str, key: str, **kwargs: Any) -> dict[str, Any]:
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        return enqueue(client.conn, instruction_id, participant_id, key, **kwargs)


def repair(url: str, threshold_seconds: int = 0, batch_size: int = 100) -> list[dict[str, Any]]:
    with Client.connect(url, Role.REPAIR, name="repair") as client:
        return [asdict(row) for row in client.repair(threshold_seconds, batch_size)]


def violations(url: str) -> list[tuple[Any, ...]]:
    """check_invariants(), as outbox_readonly: empty when the outbox is consistent."""
    with Client.connect(url, Role.READONLY, name="invariants") as client:
        return [(v.invariant, v.outbox_id, v.participant_id, v.detail) for v in client.check_invariants()]


def ledger_rows(url: str, outbox_id: Any = None) -> list[LedgerRow]:
    """The ledger rows of one item, or of all, as outbox_auditor."""
    with Client.connect(url, Role.AUDITOR, name="auditor") as client:
        return client.ledger(outbox_id)


def ledger(url: str) -> list[tuple[Any, ...]]:
    """Every ledger row, as outbox_auditor: (outbox_id, attempt_no, state, worker_id, error_code)."""
    return [(r.outbox_id, r.attempt_no, r.state, r.worker_id, r.error_code) for r in ledger_rows(url)]


def queue(url: str) -> dict[str, Any]:
    """The queue as outbox_readonly sees it: the metrics row and the in-flight items."""
    with Client.connect(url, Role.READONLY, name="queue") as client:
        metrics = client.queue_metrics()
        in_flight = [(c.outbox_id, c.attempt_no, c.worker_id) for c in client.in_flight()]
    return {"queue_depth": metrics.queue_depth, "due_now": metrics.due_now, "in_flight": metrics.in_flight,
            "in_flight_items": in_flight}


def stuck(url: str, threshold_seconds: int) -> list[tuple[str, int, str]]:
    """(outbox_id, attempt_no, worker_id) of each stuck claim, read as outbox_repair."""
    with Client.connect(url, Role.REPAIR, name="repair probe") as client:
        return [(str(c.outbox_id), c.attempt_no, c.worker_id) for c in client.stuck(threshold_seconds)]


def server_clock(url: str) -> Any:
    """clock_timestamp() on the server: to tell which side of a fault an item was created on."""
    with Client.connect(url, Role.READONLY, name="clock") as client:
        return client.conn.execute("SELECT clock_timestamp()").fetchone()[0]
