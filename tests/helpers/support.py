"""Helpers shared by the tests: role connections, have/want checks and proof records."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from runner import db

# `outbox evidence` points this at a directory of its own run (OUTBOX_REPORTS_DIR).
REPORTS = Path(os.environ.get("OUTBOX_REPORTS_DIR") or Path(__file__).resolve().parents[2] / "reports")


@contextmanager
def role_connection(url: str, role: str | None, *, name: str = "test",
                    autocommit: bool = True) -> Iterator[psycopg.Connection]:
    """A connection that acts as `role` (SET ROLE) for its whole life; None stays the owner."""
    with db.connection(url, application_name=name, autocommit=autocommit, role=role) as conn:
        yield conn


def sqlstate_of(call: Callable[[], Any]) -> str | None:
    """Run `call`; the SQLSTATE it raised, or None when it succeeded."""
    try:
        call()
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


@dataclass
class ProofRecord:
    """What one proof wanted and observed; written to reports/proofs/<name>.json."""

    name: str
    invariants: list[dict[str, Any]] = field(default_factory=list)
    observed: dict[str, Any] = field(default_factory=dict)
    reports: list[str] = field(default_factory=list)  # the report directories this proof wrote
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, invariant: str, *, want: Any, have: Any) -> None:
        """Record the invariant and fail with have/want when it does not hold."""
        passed = want == have
        with self._lock:
            self.invariants.append({"name": invariant, "wanted": _jsonable(want), "observed": _jsonable(have),
                                    "pass": passed})
        assert passed, f"{self.name}: {invariant}: have {have!r}, want {want!r}"

    def observe(self, **values: Any) -> None:
        with self._lock:
            self.observed.update({key: _jsonable(value) for key, value in values.items()})

    def report_directory(self, name: str) -> Path:
        """reports/<name>/, created; the record names it, so `outbox evidence` expects it."""
        with self._lock:
            if name not in self.reports:
                self.reports.append(name)
        directory = REPORTS / name
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    @property
    def passed(self) -> bool:
        return all(item["pass"] for item in self.invariants)

    def write(self, outcome: str) -> Path:
        directory = REPORTS / "proofs"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.name}.json"
        document = {"name": self.name, "outcome": outcome, "invariants": self.invariants,
                    "observed": self.observed, "reports": self.reports, "pid": os.getpid()}
        path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    return str(value)
