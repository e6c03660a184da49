"""The rail of the HA proofs' `outbox worker` processes (--rail tests.helpers.ha_rail:rail).

Every call is appended, as one JSON line, to the file OUTBOX_HA_RAIL_LOG names (one write of a
short line with O_APPEND: whole lines from every process and thread), so the proof counts rail
calls per key across processes and a failover. An item whose payload says {"gate": true} logs
`rail_gated` and blocks on a shared flock of OUTBOX_HA_GATE, which the proof holds exclusively
until after it has killed the leader: a dispatch is then in flight across the failover, no sleep
involved. {"fail": true}: FAILED; every other item DISPATCHED.
"""

from __future__ import annotations

import fcntl
import json
import os
import time

from runner.process import emit_json
from runner.worker import ClaimedItem, RailOutcome


def rail(item: ClaimedItem) -> RailOutcome:
    call = {"outbox_id": str(item.outbox_id), "attempt_no": item.attempt_no, "key": item.idempotency_key,
            "instruction_id": item.instruction_id, "pid": os.getpid(), "time": time.time()}
    descriptor = os.open(os.environ["OUTBOX_HA_RAIL_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, (json.dumps(call) + "\n").encode())
    finally:
        os.close(descriptor)
    if item.payload.get("gate"):
        emit_json({"event": "rail_gated", "outbox_id": str(item.outbox_id), "attempt_no": item.attempt_no,
                   "key": item.idempotency_key})
        with open(os.environ["OUTBOX_HA_GATE"]) as gate:
            fcntl.flock(gate, fcntl.LOCK_SH)  # blocks while the proof holds LOCK_EX
            fcntl.flock(gate, fcntl.LOCK_UN)
    if item.payload.get("fail"):
        return RailOutcome("FAILED", error_code="AC04", error_message="account closed")
    return RailOutcome("DISPATCHED", rail_reference=f"ha-{item.idempotency_key}-{item.attempt_no}")


def calls(path: str) -> list[dict[str, object]]:
    with open(path) as log:
        return [json.loads(line) for line in log if line.strip()]
