"""outbox show: an item's history (item_history) as a timeline for a person, or as JSON lines."""

from __future__ import annotations

from uuid import UUID

from runner.client import Client, HistoryRow, Role
from runner.json_lines import as_json_lines

TERMINAL = ("DISPATCHED", "FAILED")


def history(url: str | None, ident: list[str], role: Role = Role.READONLY) -> list[HistoryRow]:
    """The history of the item named by [outbox_id] or [instruction_id, idempotency_key]."""
    with Client.connect(url, role, name="outbox show") as client:
        if len(ident) == 1:
            return client.item_history(outbox_id(ident[0]))
        return client.item_history_by_key(ident[0], ident[1])


def outbox_id(text: str) -> UUID:
    """The outbox_id the operator typed; ValueError, naming it, when it is not one."""
    try:
        return UUID(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an outbox_id (a UUID); for a key, give INSTRUCTION_ID KEY") from None


def as_json(rows: list[HistoryRow]) -> str:
    """One JSON object per change, one per line, with stable field names."""
    return as_json_lines(rows)


def timeline(rows: list[HistoryRow]) -> str:
    """The item once, then one line per change, then where the item stands."""
    first = rows[0]
    lines = [f"item {first.outbox_id}  instruction {first.instruction_id}  key {first.idempotency_key}",
             f"     participant {first.participant_id}  sequence {first.sequence_id}  rail {first.rail_type}"]
    lines += [_line(row) for row in rows]
    lines.append(f"now: {_standing(rows[-1])}")
    return "\n".join(lines) + "\n"


def _line(row: HistoryRow) -> str:
    parts = [row.changed_at.isoformat(timespec="milliseconds"), f"{'#' + str(row.attempt_no):<4}", f"{row.state:<14}"]
    if row.worker_id is not None:
        parts.append(f"worker {row.worker_id}")
    if row.latency_ms is not None:
        parts.append(f"after {row.latency_ms} ms")
    if row.error_code is not None or row.error_message is not None:
        parts.append(f"error {row.error_code or '-'}: {row.error_message or ''}".rstrip())
    if row.rail_reference is not None:
        parts.append(f"rail reference {row.rail_reference}")
    if row.actor is not None:
        parts.append(f"by {row.actor}")
    if row.reason is not None:
        parts.append(f"reason: {row.reason}")
    return "  ".join(parts).rstrip()


def _standing(last: HistoryRow) -> str:
    return {
        "ENQUEUED": "pending, never claimed",
        "DISPATCHING": f"in flight with worker {last.worker_id} (repair requeues it if the claim outlives the "
                       "threshold)",
        "RETRYABLE": "pending, due again after its retry delay",
        "ZOMBIE_REQUEUE": "pending, requeued by repair; the rail may have seen it (same idempotency key)",
        "QUARANTINED": "QUARANTINED: never claimed until an operator checks the rail by its idempotency key, "
                       "then runs outbox quarantine release or outbox quarantine fail",
        "RELEASED": f"pending, released by {last.actor}: due again with a fresh attempt budget (same idempotency "
                    "key)",
        "DISPATCHED": "DISPATCHED (terminal)",
        "FAILED": "FAILED (terminal)" if last.actor is None else f"FAILED (terminal), by {last.actor}",
    }.get(last.state, last.state)

