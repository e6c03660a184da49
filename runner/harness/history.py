"""A history of client operations and a checker in the manner of Jepsen's total-queue checker.

Each client operation is recorded twice: when it is invoked, and when it ends, as `ok` (the server
acknowledged it), `fail` (the server refused it: nothing happened) or `unknown` (the connection or
the server went away: it may or may not have happened; Jepsen's `info`). After the load and a
drain, the checker treats an enqueue as Jepsen treats an enqueue and a terminal attempt in the
ledger as a dequeue:

- lost: an acknowledged enqueue whose item never became terminal;
- unexpected: a terminal item whose key no client ever tried to enqueue;
- duplicated: a key with more than one terminal attempt (on one item, or on two items);
- recovered: an unknown-outcome enqueue whose item became terminal;
- resolved_by_retry: an unknown-outcome enqueue whose key a later enqueue acknowledged (the client
  resolves an unknown outcome by retrying the same key, never by a new one);
- unresolved: an unknown-outcome enqueue whose key was never acknowledged;
- identity_changed: a key acknowledged with two different outbox ids (a silent re-creation);
- lost_completions: a terminal completion acknowledged to a worker that the ledger lacks.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from runner import db

OK, FAIL, UNKNOWN, INVOKE = "ok", "fail", "unknown", "invoke"
TERMINAL = ("DISPATCHED", "FAILED")


@dataclass(frozen=True)
class TerminalAttempt:
    """A DISPATCHED or FAILED row of the ledger."""

    outbox_id: str
    instruction_id: str
    idempotency_key: str
    attempt_no: int
    state: str


@dataclass
class Acknowledged:
    """Filled in by the caller inside History.operation: the value of an acknowledged operation."""

    value: Any = None


def is_definite(exc: BaseException) -> bool:
    """Whether an error proves that the operation did not happen. A SQLSTATE from the server means
    the statement (autocommit: its transaction) was rolled back, except for connection failures
    (class 08) and shutdowns (57P01..57P03), which may arrive after a commit."""
    state = db.sqlstate(exc)
    return state is not None and not state.startswith("08") and state not in ("57P01", "57P02", "57P03")


@dataclass
class History:
    """Thread-safe, append-only; times are nanoseconds since the history began."""

    name: str
    operations: list[dict[str, Any]] = field(default_factory=list)
    _started: int = field(default_factory=time.monotonic_ns, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def invoke(self, process: str, f: str, value: Any) -> int:
        return self._append(process, INVOKE, f, value, None)

    def end(self, invocation: int, kind: str, value: Any = None, error: str | None = None) -> int:
        opened = self.operations[invocation]
        return self._append(opened["process"], kind, opened["f"], value, error, invocation)

    @contextmanager
    def operation(self, process: str, f: str, value: Any) -> Iterator[Acknowledged]:
        """Records invoke, then ok with outcome.value, or fail/unknown from the exception (re-raised)."""
        invocation = self.invoke(process, f, value)
        outcome = Acknowledged()
        try:
            yield outcome
        except psycopg.Error as exc:
            self.end(invocation, FAIL if is_definite(exc) else UNKNOWN,
                     error=f"{db.sqlstate(exc) or type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            raise
        self.end(invocation, OK, outcome.value)

    def _append(self, process: str, kind: str, f: str, value: Any, error: str | None,
                invocation: int | None = None) -> int:
        with self._lock:
            self.operations.append({"index": len(self.operations), "process": process, "type": kind, "f": f,
                                    "value": _jsonable(value), "error": error, "invocation": invocation,
                                    "time_ns": time.monotonic_ns() - self._started})
            return len(self.operations) - 1

    def completed(self, f: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(invoke, end) pairs of operation f, in the order they ended."""
        with self._lock:
            ops = list(self.operations)
        return [(ops[op["invocation"]], op) for op in ops if op["f"] == f and op["type"] != INVOKE]


# The counts a valid history holds at zero; the others (recovered, resolved_by_retry, ...) describe it.
FAULTS = ("lost", "unexpected", "duplicated", "unresolved", "identity_changed", "lost_completions")


@dataclass
class Verdict:
    counts: dict[str, int]
    details: dict[str, list[Any]]

    @property
    def faults(self) -> dict[str, int]:
        return {k: self.counts[k] for k in FAULTS}

    @property
    def valid(self) -> bool:
        return not any(self.faults.values())

    def line(self, name: str) -> str:
        shown = " ".join(f"{k}={v}" for k, v in self.counts.items())
        return f"history {name}: {'valid' if self.valid else 'INVALID'} {shown}"


def key_of(value: dict[str, Any]) -> tuple[str, str]:
    return value["instruction_id"], value["idempotency_key"]


Key = tuple[str, str]


@dataclass
class _Enqueues:
    """What the clients know of each key: tried, acknowledged (with the ids they were told), unknown."""

    attempted: set[Key] = field(default_factory=set)
    acknowledged: dict[Key, set[str]] = field(default_factory=lambda: defaultdict(set))
    unknown_at: dict[Key, list[int]] = field(default_factory=lambda: defaultdict(list))
    retried_at: dict[Key, int] = field(default_factory=dict)  # the last acknowledged invocation

    @classmethod
    def of(cls, history: History) -> _Enqueues:
        known = cls()
        for invoked, ended in history.completed("enqueue"):
            key = key_of(invoked["value"])
            known.attempted.add(key)
            if ended["type"] == OK:
                known.acknowledged[key].add(str(ended["value"]["outbox_id"]))
                known.retried_at[key] = max(known.retried_at.get(key, 0), invoked["time_ns"])
            elif ended["type"] == UNKNOWN:
                known.unknown_at[key].append(ended["time_ns"])
        return known


def check(history: History, terminal: Iterable[TerminalAttempt]) -> Verdict:
    """Classify the history against the terminal attempts of the ledger, read after draining."""
    known = _Enqueues.of(history)
    terminal_by_key: dict[Key, list[TerminalAttempt]] = defaultdict(list)
    for row in terminal:
        terminal_by_key[(row.instruction_id, row.idempotency_key)].append(row)
    terminal_rows = [row for rows in terminal_by_key.values() for row in rows]
    terminal_items = {str(row.outbox_id) for row in terminal_rows}
    terminal_attempts = {(str(row.outbox_id), row.attempt_no) for row in terminal_rows}
    completions = [ended["value"] for _, ended in history.completed("complete")
                   if ended["type"] == OK and ended["value"]["state"] in TERMINAL]

    details: dict[str, list[Any]] = {
        "lost": sorted([list(k), sorted(ids - terminal_items)]
                       for k, ids in known.acknowledged.items() if ids - terminal_items),
        "unexpected": sorted(list(k) for k in terminal_by_key if k not in known.attempted),
        "duplicated": sorted([list(k), [(str(r.outbox_id), r.attempt_no, r.state) for r in rows]]
                             for k, rows in terminal_by_key.items() if len(rows) > 1),
        "recovered": sorted(list(k) for k in known.unknown_at if k in terminal_by_key),
        "resolved_by_retry": sorted(list(k) for k, times in known.unknown_at.items()
                                    if known.retried_at.get(k, -1) > max(times)),
        "unresolved": sorted(list(k) for k in known.unknown_at if k not in known.acknowledged),
        "identity_changed": sorted([list(k), sorted(ids)] for k, ids in known.acknowledged.items() if len(ids) > 1),
        "lost_completions": sorted([str(c["outbox_id"]), c["attempt_no"]] for c in completions
                                   if (str(c["outbox_id"]), c["attempt_no"]) not in terminal_attempts),
    }
    kinds: dict[str, int] = defaultdict(int)
    for op in history.operations:
        if op["type"] != INVOKE:
            kinds[f"{op['f']}_{op['type']}"] += 1
    counts = {"attempted": len(known.attempted), "acknowledged": len(known.acknowledged),
              "unknown": len(known.unknown_at), "terminal": len(terminal_items),
              **{name: len(found) for name, found in details.items()}, **dict(sorted(kinds.items()))}
    return Verdict(counts=counts, details=details)


def read_terminal_attempts(conn: psycopg.Connection) -> list[TerminalAttempt]:
    """The terminal attempts of the ledger; `conn` acts as outbox_auditor (it reads the ledger)."""
    rows = conn.execute(db.named_sql("ledger_terminal_attempts")).fetchall()
    return [TerminalAttempt(str(outbox_id), instruction_id, key, attempt_no, state)
            for outbox_id, instruction_id, key, attempt_no, state in rows]


def write(history: History, verdict: Verdict, directory: Path) -> Path:
    """reports/history/<name>.json: the counts, what each non-zero count names, every operation."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{history.name}.json"
    document = {"name": history.name, "valid": verdict.valid, "counts": verdict.counts, "details": verdict.details,
                "operations": history.operations}
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    return path


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return _jsonable(asdict(value))
    return str(value)
