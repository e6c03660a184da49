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
class Outcome:
    """Filled in by the caller inside History.operation: the value of an acknowledged operation."""

    value: Any = None


def is_definite(exc: BaseException) -> bool:
    """Whether an error proves that the operation did not happen. A SQLSTATE from the server means
    the statement (autocommit: its transaction) was rolled back, except for connection failures
    (class 08) and shutdowns (57P01..57P03), which may arrive after a commit."""
    state = db.sqlstate(exc)
    return bool(state) and not state.startswith("08") and state not in ("57P01", "57P02", "57P03")


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
    def operation(self, process: str, f: str, value: Any) -> Iterator[Outcome]:
        """Records invoke, then ok with outcome.value, or fail/unknown from the exception (re-raised)."""
        invocation = self.invoke(process, f, value)
        outcome = Outcome()
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


@dataclass
class Verdict:
    counts: dict[str, int]
    details: dict[str, list[Any]]

    @property
    def valid(self) -> bool:
        return all(self.counts[k] == 0 for k in
                   ("lost", "unexpected", "duplicated", "unresolved", "identity_changed", "lost_completions"))

    def line(self, name: str) -> str:
        shown = " ".join(f"{k}={v}" for k, v in self.counts.items())
        return f"history {name}: {'valid' if self.valid else 'INVALID'} {shown}"


def key_of(value: dict[str, Any]) -> tuple[str, str]:
    return value["instruction_id"], value["idempotency_key"]


def check(history: History, terminal: Iterable[TerminalAttempt]) -> Verdict:
    """Classify the history against the terminal attempts of the ledger, read after draining."""
    enqueues = history.completed("enqueue")
    attempted = {key_of(invoked["value"]) for invoked, _ in enqueues}
    acknowledged: dict[tuple[str, str], set[str]] = defaultdict(set)
    unknown_at: dict[tuple[str, str], list[int]] = defaultdict(list)
    for invoked, ended in enqueues:
        key = key_of(invoked["value"])
        if ended["type"] == OK:
            acknowledged[key].add(str(ended["value"]["outbox_id"]))
        elif ended["type"] == UNKNOWN:
            unknown_at[key].append(ended["time_ns"])
    retried_at: dict[tuple[str, str], int] = {}  # the last acknowledged invocation of each key
    for invoked, ended in enqueues:
        if ended["type"] == OK:
            key = key_of(invoked["value"])
            retried_at[key] = max(retried_at.get(key, 0), invoked["time_ns"])

    terminal_by_key: dict[tuple[str, str], list[TerminalAttempt]] = defaultdict(list)
    terminal_ids = set()
    for row in terminal:
        terminal_by_key[(row.instruction_id, row.idempotency_key)].append(row)
        terminal_ids.add((str(row.outbox_id), row.attempt_no))
    terminal_items = {str(row.outbox_id) for rows in terminal_by_key.values() for row in rows}

    lost = sorted([list(k), sorted(ids - terminal_items)] for k, ids in acknowledged.items() if ids - terminal_items)
    unexpected = sorted(list(k) for k in terminal_by_key if k not in attempted)
    duplicated = sorted([list(k), [(str(r.outbox_id), r.attempt_no, r.state) for r in rows]]
                        for k, rows in terminal_by_key.items() if len(rows) > 1)
    identity_changed = sorted([list(k), sorted(ids)] for k, ids in acknowledged.items() if len(ids) > 1)
    unresolved = sorted(list(k) for k in unknown_at if k not in acknowledged)
    resolved_by_retry = sorted(list(k) for k, times in unknown_at.items() if retried_at.get(k, -1) > max(times))
    recovered = sorted(list(k) for k in unknown_at if k in terminal_by_key)
    lost_completions = sorted([str(ended["value"]["outbox_id"]), ended["value"]["attempt_no"]]
                              for _, ended in history.completed("complete")
                              if ended["type"] == OK and ended["value"]["state"] in TERMINAL
                              and (str(ended["value"]["outbox_id"]), ended["value"]["attempt_no"]) not in terminal_ids)

    kinds = defaultdict(int)
    for op in history.operations:
        if op["type"] != INVOKE:
            kinds[f"{op['f']}_{op['type']}"] += 1
    counts = {
        "attempted": len(attempted), "acknowledged": len(acknowledged), "unknown": len(unknown_at),
        "terminal": len(terminal_items), "lost": len(lost), "unexpected": len(unexpected),
        "duplicated": len(duplicated), "recovered": len(recovered), "resolved_by_retry": len(resolved_by_retry),
        "unresolved": len(unresolved),
        "identity_changed": len(identity_changed), "lost_completions": len(lost_completions),
        **dict(sorted(kinds.items())),
    }
    details = {"lost": lost, "unexpected": unexpected, "duplicated": duplicated, "recovered": recovered,
               "resolved_by_retry": resolved_by_retry, "unresolved": unresolved,
               "identity_changed": identity_changed, "lost_completions": lost_completions}
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
