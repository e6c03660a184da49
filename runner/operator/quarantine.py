"""outbox quarantine: the items waiting for an operator, and the operator's release or fail of one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runner.client import Client, Decision, QuarantinedItem, Role
from runner.json_lines import as_json_lines
from runner.operator.show import outbox_id

COLUMNS = ("outbox_id", "instruction_id", "idempotency_key", "rail_type", "attempt_count", "quarantined_at",
           "quarantine_reason")


def items(url: str | None, role: Role = Role.OPERATOR) -> list[QuarantinedItem]:
    """Every QUARANTINED item, oldest quarantine first."""
    with Client.connect(url, role, name="outbox quarantine") as client:
        return client.quarantined()


def release(url: str | None, ident: str, *, reason: str, actor: str) -> Decision:
    """release_quarantined as outbox_operator: due again now, with a fresh attempt budget."""
    with Client.connect(url, Role.OPERATOR, name="outbox quarantine") as client:
        return client.release_quarantined(outbox_id(ident), reason=reason, actor=actor)


def fail(url: str | None, ident: str, *, reason: str, actor: str) -> Decision:
    """fail_quarantined as outbox_operator: FAILED, terminal."""
    with Client.connect(url, Role.OPERATOR, name="outbox quarantine") as client:
        return client.fail_quarantined(outbox_id(ident), reason=reason, actor=actor)


def as_json(rows: list[QuarantinedItem]) -> str:
    """One JSON object per item, one per line, with stable field names."""
    return as_json_lines(rows)


def table(rows: list[QuarantinedItem]) -> str:
    """A header and one line per item, columns separated by two spaces; a line saying so when there are none."""
    if not rows:
        return "no quarantined items\n"
    cells = [list(COLUMNS)] + [[_cell(getattr(row, name)) for name in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]
    return "".join("  ".join([c.ljust(w) for c, w in zip(line, widths, strict=False)] + [line[-1]]).rstrip() + "\n"
                   for line in cells)


def decision(row: Decision) -> str:
    return f"{row.outbox_id}: attempt {row.attempt_no} {row.state}\n"


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)

