"""outbox rail pause|resume|list: the operator's rail switches (pause_rail, resume_rail) and what is paused."""

from __future__ import annotations

import json
from dataclasses import asdict

from runner.client import Client, PausedRail, RailChange, Role
from runner.json_lines import as_json_lines


def pause(url: str | None, rail_type: str, reason: str, actor: str) -> RailChange:
    """pause_rail as outbox_operator, committed."""
    with Client.connect(url, Role.OPERATOR, name="outbox rail") as client:
        return client.pause_rail(rail_type, reason, actor)


def resume(url: str | None, rail_type: str, actor: str) -> RailChange:
    """resume_rail as outbox_operator, committed."""
    with Client.connect(url, Role.OPERATOR, name="outbox rail") as client:
        return client.resume_rail(rail_type, actor)


def paused(url: str | None, role: Role = Role.READONLY) -> list[PausedRail]:
    """The rails paused now."""
    with Client.connect(url, role, name="outbox rail") as client:
        return client.paused_rails()


def change_line(change: RailChange, action: str) -> str:
    """One JSON line saying what a pause or resume did."""
    return json.dumps({"event": f"rail_{action}", **asdict(change)}, sort_keys=True) + "\n"


def as_json(rails: list[PausedRail]) -> str:
    """One JSON object per paused rail, one per line."""
    return as_json_lines(rails)


def table(rails: list[PausedRail]) -> str:
    """The paused rails for a person: one line each, or a line saying there are none."""
    if not rails:
        return "no rail is paused\n"
    return "".join(
        f"{r.rail_type}  paused since {r.paused_since:%Y-%m-%d %H:%M:%S%z} by {r.actor} ({r.changed_by})  "
        f"waiting {r.waiting_items}, due {r.due_items}  reason: {r.reason}\n"
        for r in rails
    )

