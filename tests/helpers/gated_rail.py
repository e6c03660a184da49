"""A rail for `outbox worker` proofs, loaded in the worker process (--rail tests.helpers.gated_rail:rail).

An item whose payload says {"gate": true} blocks inside the rail call until the test releases an
advisory lock it holds: the test then knows a dispatch is in flight, and signals the worker
while it is. Before it blocks, the rail logs a `rail_gated` line with the backend pid it waits on.
An item whose payload says {"fail": true} gets FAILED; every other item DISPATCHED.
"""

from __future__ import annotations

import os

import psycopg

from runner.process import emit_json
from runner.worker import ClaimedItem, RailOutcome

GATE_LOCK = 160_016  # the advisory lock key the test holds


def rail(item: ClaimedItem) -> RailOutcome:
    if item.payload.get("gate"):
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, application_name="gated rail") as conn:
            emit_json({"event": "rail_gated", "outbox_id": str(item.outbox_id), "pid": conn.info.backend_pid})
            conn.execute("SELECT pg_advisory_lock(%s)", (GATE_LOCK,))
            conn.execute("SELECT pg_advisory_unlock(%s)", (GATE_LOCK,))
    if item.payload.get("fail"):
        return RailOutcome("FAILED", error_code="AC04", error_message="account closed")
    return RailOutcome("DISPATCHED", rail_reference=f"gated-{item.idempotency_key}")
