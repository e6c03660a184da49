"""Rows of the SQL API as JSON lines: one object per row, stable field names, for `--json` output."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from decimal import Decimal
from typing import Any
from uuid import UUID


def as_json_lines(rows: Iterable[Any]) -> str:
    """One JSON object per dataclass row, one per line, keys sorted."""
    return "".join(json.dumps({k: plain(v) for k, v in asdict(row).items()}, sort_keys=True) + "\n" for row in rows)


def plain(value: Any) -> Any:
    """A value JSON can hold: UUIDs as text, numerics as numbers, times in ISO 8601."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
