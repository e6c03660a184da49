"""Deterministic interleavings, in the spirit of PostgreSQL's isolation tester.

A spec names sessions (each a thread with its own connection, `application_name` and runtime
role, switched to with SET ROLE) and their steps (SQL). A permutation is one order of all steps
that keeps each session's own order; with none listed, every such order is run. Each step is
sent to its session's thread; the step then either completes or is found waiting on a lock held
by another of the spec's sessions (pg_blocking_pids() restricted to their backend pids), and
only then does the next step run. A waiting step's completion is collected as soon as a later
step lets it finish. Sessions that wait only on each other are deadlocked: the engine waits for
the server's deadlock detector to abort one of them (40P01) before it goes on. A step issued to
a session that still waits makes the permutation invalid, as in the isolation tester: it is
reported and its remaining steps are not run.

Every permutation starts from empty package tables (TRUNCATE as the owner, the only role that
may), runs the spec's seed statements, its steps, then the spec's checks and
check_invariants() as outbox_readonly. The transcript of each permutation is written as JSON and
as text. Knows nothing of payments beyond the name of check_invariants().
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from runner import client, db
from runner.client import Role

POLL_SECONDS = 0.005  # how often a running step is asked whether it finished or waits
STEP_DEADLINE_SECONDS = 30.0  # a step that neither finishes nor waits on our sessions is stuck


@dataclass(frozen=True)
class Step:
    name: str
    sql: str


@dataclass(frozen=True)
class Session:
    name: str
    role: str
    steps: tuple[Step, ...]
    setup: tuple[str, ...] = ()  # run before each permutation, e.g. BEGIN


@dataclass(frozen=True)
class Invariant:
    name: str
    want: Any
    have: Any

    @property
    def passed(self) -> bool:
        return self.want == self.have


@dataclass(frozen=True)
class Spec:
    name: str
    sessions: tuple[Session, ...]
    # Checks one valid permutation's outcome; the probe reads the database as runtime roles.
    check: Callable[[PermutationResult, Probe], list[Invariant]]
    seed: tuple[tuple[str | None, str], ...] = ()  # (role or None for the owner, SQL) before each permutation
    permutations: tuple[tuple[str, ...], ...] | None = None
    # How many of the permutations run are valid (none sends a step to a session that still waits).
    # Every spec states it, and `expected` holds the run to it: a valid set that shrinks (a lock now
    # waited for) or grows (a lock no longer taken) fails, where "at least one" would pass.
    valid: int = field(kw_only=True)

    def __post_init__(self) -> None:
        if self.permutations is not None and self.valid != len(self.permutations):
            raise ValueError(f"spec {self.name}: a listed permutation must be valid, so valid must be "
                             f"{len(self.permutations)}, not {self.valid}")

    def step(self, name: str) -> tuple[Session, Step]:
        for session in self.sessions:
            for step in session.steps:
                if step.name == name:
                    return session, step
        raise ValueError(f"spec {self.name}: no step named {name}")


@dataclass
class StepOutcome:
    columns: list[str] | None = None
    rows: list[tuple[Any, ...]] | None = None
    sqlstate: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.sqlstate is None and self.message is None

    def as_json(self) -> dict[str, Any]:
        if not self.ok:
            return {"sqlstate": self.sqlstate, "message": self.message}
        return {"columns": self.columns, "rows": [[_plain(v) for v in row] for row in self.rows or []]}


@dataclass
class Event:
    """One line of a transcript: a step waiting, a step completed, or the permutation invalid."""

    step: str
    session: str
    status: str  # waiting | completed | invalid
    outcome: StepOutcome | None = None
    order: int = 0  # position in the transcript
    after_wait: bool = False  # completed after it had been reported waiting

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"order": self.order, "step": self.step, "session": self.session,
                                    "status": self.status, "after_wait": self.after_wait}
        if self.outcome is not None:
            document["result"] = self.outcome.as_json()
        return document


@dataclass
class PermutationResult:
    spec: str
    steps: tuple[str, ...]
    events: list[Event] = field(default_factory=list)
    invalid: str | None = None
    invariants: list[Invariant] = field(default_factory=list)
    seconds: float = 0.0

    def outcome(self, step: str) -> StepOutcome | None:
        """The result of a step that completed, None when it did not (invalid permutation)."""
        return next((e.outcome for e in self.events if e.step == step and e.status == "completed"), None)

    def waited(self, step: str) -> bool:
        return any(e.step == step and e.status == "waiting" for e in self.events)

    def completion_order(self) -> list[str]:
        return [e.step for e in self.events if e.status == "completed"]

    @property
    def failures(self) -> list[Invariant]:
        return [i for i in self.invariants if not i.passed]

    def as_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "permutation": list(self.steps), "valid": self.invalid is None,
                "invalid": self.invalid, "seconds": round(self.seconds, 3),
                "transcript": [e.as_json() for e in self.events],
                "invariants": [{"name": i.name, "wanted": _plain(i.want), "observed": _plain(i.have),
                                "pass": i.passed} for i in self.invariants]}

    def as_text(self) -> str:
        lines = [f"starting permutation: {' '.join(self.steps)}"]
        for event in self.events:
            if event.status == "waiting":
                lines.append(f"step {event.step}: <waiting ...>")
            elif event.status == "invalid":
                lines.append(f"invalid permutation detected: {self.invalid}")
            else:
                lines.extend(_outcome_lines(event))
        for invariant in self.invariants:
            verdict = "ok" if invariant.passed else f"FAILED: have {invariant.have!r}, want {invariant.want!r}"
            lines.append(f"check {invariant.name}: {verdict}")
        return "\n".join(lines) + "\n"


def _outcome_lines(event: Event) -> list[str]:
    head = f"step {event.step}: <... completed>" if event.after_wait else f"step {event.step}:"
    outcome = event.outcome or StepOutcome()
    if not outcome.ok:
        return [f"{head} ERROR {outcome.sqlstate}: {outcome.message}"]
    if outcome.columns is None:
        return [head]
    lines = [head, "  " + " | ".join(outcome.columns)]
    lines.extend("  " + " | ".join("" if v is None else str(_plain(v)) for v in row) for row in outcome.rows or [])
    lines.append(f"  ({len(outcome.rows or [])} rows)")
    return lines


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def interleavings(sessions: Sequence[Sequence[str]]) -> Iterator[tuple[str, ...]]:
    """Every order of all steps that keeps each session's steps in their own order, in a fixed
    order: the first session's next step first (as the isolation tester generates them)."""
    heads = [0] * len(sessions)
    total = sum(len(steps) for steps in sessions)
    chosen: list[str] = []

    def extend() -> Iterator[tuple[str, ...]]:
        if len(chosen) == total:
            yield tuple(chosen)
            return
        for index, steps in enumerate(sessions):
            if heads[index] < len(steps):
                chosen.append(steps[heads[index]])
                heads[index] += 1
                yield from extend()
                heads[index] -= 1
                chosen.pop()

    yield from extend()


def permutations_of(spec: Spec) -> list[tuple[str, ...]]:
    """The spec's listed permutations, or every order of its steps that keeps each session's."""
    if spec.permutations is not None:
        for permutation in spec.permutations:
            for name in permutation:
                spec.step(name)  # raises for a step the spec does not have
        return [tuple(p) for p in spec.permutations]
    return list(interleavings([[s.name for s in session.steps] for session in spec.sessions]))


class Probe:
    """Reads the database after a permutation, as a runtime role: never as the owner. One
    connection per role, kept for the whole spec."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connections: dict[str, psycopg.Connection] = {}

    def rows(self, role: str, query: str,
             params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.execute(role, query, params).fetchall()

    def execute(self, role: str, query: str,
                params: Sequence[Any] | dict[str, Any] | None = None) -> psycopg.Cursor[tuple[Any, ...]]:
        if not role:
            raise ValueError("a probe acts as a runtime role, never as the owner")
        if role not in self.connections:
            self.connections[role] = db.connect(self.url, application_name=f"interleave-probe/{role}",
                                                autocommit=True, role=role)
        return self.connections[role].execute(query, params)

    def close(self) -> None:
        for conn in self.connections.values():
            conn.close()
        self.connections.clear()


class _Call:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.outcome: StepOutcome | None = None
        self.done = threading.Event()


class _SessionThread:
    """One session: a thread that owns one connection and runs the statements sent to it."""

    def __init__(self, url: str, spec: str, session: Session) -> None:
        self.session = session
        self.conn = db.connect(url, application_name=f"{spec}/{session.name}"[:63], autocommit=True,
                               role=session.role)
        self.pid: int = self.conn.info.backend_pid
        self.calls: queue.Queue[_Call | None] = queue.Queue()
        self.active: tuple[str, _Call] | None = None  # the step this session runs or waits in
        self.thread = threading.Thread(target=self._serve, name=f"interleave-{session.name}", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while (call := self.calls.get()) is not None:
            try:
                cursor = self.conn.execute(call.sql)
                if cursor.description is None:
                    call.outcome = StepOutcome()
                else:
                    call.outcome = StepOutcome(columns=[c.name for c in cursor.description], rows=cursor.fetchall())
            except psycopg.Error as exc:
                call.outcome = StepOutcome(sqlstate=exc.sqlstate, message=_first_line(str(exc)))
            finally:
                call.done.set()

    def submit(self, sql: str) -> _Call:
        call = _Call(sql)
        self.calls.put(call)
        return call

    def run(self, sql: str) -> StepOutcome:
        call = self.submit(sql)
        if not call.done.wait(STEP_DEADLINE_SECONDS):
            raise RuntimeError(f"session {self.session.name}: {sql!r} did not finish")
        assert call.outcome is not None
        return call.outcome

    def reset(self) -> None:
        """End whatever the permutation left: cancel a waiting step, roll back."""
        if self.active is not None:
            _, call = self.active
            if not call.done.is_set():
                self.conn.cancel_safe()
                call.done.wait(STEP_DEADLINE_SECONDS)
            self.active = None

    def close(self) -> None:
        self.calls.put(None)
        self.thread.join(STEP_DEADLINE_SECONDS)
        self.conn.close()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


class Runner:
    """Runs the permutations of one spec against the database at `url` (the package owner)."""

    def __init__(self, url: str, spec: Spec) -> None:
        self.url = url
        self.spec = spec
        self.probe = Probe(url)

    def permutations(self) -> list[tuple[str, ...]]:
        return permutations_of(self.spec)

    def run(self) -> list[PermutationResult]:
        owner = db.connect(self.url, application_name=f"{self.spec.name}/owner"[:63], autocommit=True)
        sessions = {s.name: _SessionThread(self.url, self.spec.name, s) for s in self.spec.sessions}
        try:
            tables = [row[0] for row in owner.execute(db.named_sql("package_tables")).fetchall()]
            return [self._permutation(owner, sessions, tables, steps) for steps in self.permutations()]
        finally:
            for session in sessions.values():
                session.reset()
                session.close()
            self.probe.close()
            owner.close()

    def _permutation(self, owner: psycopg.Connection, sessions: dict[str, _SessionThread], tables: list[str],
                     steps: tuple[str, ...]) -> PermutationResult:
        started = time.monotonic()
        result = PermutationResult(spec=self.spec.name, steps=steps)
        self._prepare(owner, sessions, tables)
        self._run_steps(owner, sessions, result)
        for session in sessions.values():
            session.reset()
            session.run("ROLLBACK")  # a no-op (with a warning) when the permutation ended its transactions
        if result.invalid is None:
            result.invariants = list(self.spec.check(result, self.probe))
            violations = self.probe.rows(Role.READONLY, client.queries()["check_invariants"])
            result.invariants.append(Invariant("check_invariants() is empty", want=[],
                                               have=sorted([row[0], row[3]] for row in violations)))
        result.seconds = time.monotonic() - started
        return result

    def _prepare(self, owner: psycopg.Connection, sessions: dict[str, _SessionThread], tables: list[str]) -> None:
        """Empty package tables, the spec's seed, each session's setup."""
        owner.execute(f"TRUNCATE {', '.join(tables)}")
        for role, statement in self.spec.seed:
            if role is None:
                owner.execute(statement)
            else:
                self.probe.execute(role, statement)  # a seed through the API, as the role it belongs to
        for session in sessions.values():
            for statement in session.session.setup:
                outcome = session.run(statement)
                if not outcome.ok:
                    raise RuntimeError(f"setup of {session.session.name} failed: {outcome.sqlstate} {outcome.message}")

    def _run_steps(self, owner: psycopg.Connection, sessions: dict[str, _SessionThread],
                   result: PermutationResult) -> None:
        session_pids = [s.pid for s in sessions.values()]
        waiting: list[_SessionThread] = []  # sessions whose step waits, in the order they began to wait
        for name in result.steps:
            spec_session, step = self.spec.step(name)
            session = sessions[spec_session.name]
            if session.active is not None:
                self._settle_waiting(owner, waiting, session_pids, result)
            if session.active is not None:
                self._await_deadlock_detector(owner, waiting, session_pids, result)
            if session.active is not None:
                result.invalid = (f"step {name} of session {spec_session.name} issued while its step "
                                  f"{session.active[0]} waits")
                self._record(result, Event(step=name, session=spec_session.name, status="invalid"))
                return
            session.active = (name, session.submit(step.sql))
            if self._settle(owner, session, session_pids):
                waiting.append(session)
                self._record(result, Event(step=name, session=spec_session.name, status="waiting"))
            else:
                self._complete(session, result, after_wait=False)
            self._settle_waiting(owner, waiting, session_pids, result)
        self._await_deadlock_detector(owner, waiting, session_pids, result)
        if waiting:
            name, _ = waiting[0].active or ("?", None)
            result.invalid = f"step {name} of session {waiting[0].session.name} still waits after the last step"
            self._record(result, Event(step=name, session=waiting[0].session.name, status="invalid"))

    def _settle(self, owner: psycopg.Connection, session: _SessionThread, session_pids: list[int]) -> bool:
        """Wait until the session's step has finished (False) or waits on a lock held by another
        of the spec's sessions (True). Polling the server is how the isolation tester does it too:
        there is no notification for "this backend now waits"."""
        assert session.active is not None
        name, call = session.active
        others = [pid for pid in session_pids if pid != session.pid]
        deadline = time.monotonic() + STEP_DEADLINE_SECONDS
        while not call.done.wait(POLL_SECONDS):
            blocked = db.first_row(owner.execute(db.named_sql("interleave_session_blocked"),
                                                 {"pid": session.pid, "session_pids": others}))[0]
            if blocked and not call.done.is_set():
                return True
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.spec.name}: step {name} neither finished nor waited on a lock "
                                   f"of the spec's sessions within {STEP_DEADLINE_SECONDS} s")
        return False

    def _settle_waiting(self, owner: psycopg.Connection, waiting: list[_SessionThread], session_pids: list[int],
                        result: PermutationResult) -> None:
        """Collect every waiting step that a previous step let finish; repeat until each of the
        rest is found waiting again, since one completion can release another waiter."""
        progressed = True
        while progressed:
            progressed = False
            for session in list(waiting):
                if not self._settle(owner, session, session_pids):
                    waiting.remove(session)
                    self._complete(session, result, after_wait=True)
                    progressed = True

    def _await_deadlock_detector(self, owner: psycopg.Connection, waiting: list[_SessionThread],
                                 session_pids: list[int], result: PermutationResult) -> None:
        """When the waiting sessions wait only on each other (a cycle), no later step can release
        them: only the server's deadlock detector can, after deadlock_timeout, by aborting one with
        40P01. Wait for that, then collect what finished. Anything else is left as it is."""
        pids = {s.pid for s in waiting}
        if len(waiting) < 2:
            return
        for session in waiting:
            blockers = set(db.first_row(owner.execute(db.named_sql("interleave_session_blockers"),
                                                      {"pid": session.pid}))[0])
            if not blockers or not blockers <= pids:
                return
        deadline = time.monotonic() + STEP_DEADLINE_SECONDS
        calls = [s.active[1] for s in waiting if s.active is not None]
        while not any(call.done.wait(POLL_SECONDS) for call in calls):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.spec.name}: sessions waiting on each other were not released by the "
                                   f"deadlock detector within {STEP_DEADLINE_SECONDS} s")
        self._settle_waiting(owner, waiting, session_pids, result)

    def _complete(self, session: _SessionThread, result: PermutationResult, *, after_wait: bool) -> None:
        assert session.active is not None
        name, call = session.active
        session.active = None
        self._record(result, Event(step=name, session=session.session.name, status="completed",
                                   outcome=call.outcome, after_wait=after_wait))

    @staticmethod
    def _record(result: PermutationResult, event: Event) -> None:
        event.order = len(result.events) + 1
        result.events.append(event)


def expected(spec: Spec, results: list[PermutationResult]) -> list[Invariant]:
    """What every run of a spec must show, whatever the spec checks itself: each permutation it
    has (all the orders that keep each session's order, or the listed ones) ran once, and exactly
    `spec.valid` of them are valid, the listed ones all of them."""
    wanted = [" ".join(p) for p in permutations_of(spec)]
    valid = [" ".join(r.steps) for r in results if r.invalid is None]
    checks = [Invariant("every permutation of the spec ran, once", want=wanted,
                        have=[" ".join(r.steps) for r in results]),
              Invariant(f"{spec.valid} of {len(wanted)} permutations are valid", want=spec.valid, have=len(valid))]
    if spec.permutations is not None:
        checks.append(Invariant("every listed permutation is valid", want=wanted, have=valid))
    return checks


def write_transcripts(directory: Path, spec: Spec, results: list[PermutationResult]) -> Path:
    """reports/interleavings/<spec>/: one JSON and one text transcript per permutation, and a
    summary of the spec. Returns the spec's directory."""
    target = directory / spec.name
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*"):
        old.unlink()
    for number, result in enumerate(results, start=1):
        stem = f"{number:03d}_" + re.sub(r"[^A-Za-z0-9_]+", "-", "-".join(result.steps))[:150]
        (target / f"{stem}.json").write_text(json.dumps(result.as_json(), indent=2) + "\n")
        (target / f"{stem}.txt").write_text(result.as_text())
    summary = {
        "spec": spec.name,
        "sessions": {s.name: {"role": s.role, "setup": list(s.setup), "steps": {t.name: t.sql for t in s.steps}}
                     for s in spec.sessions},
        "permutations": len(results),
        "valid": sum(r.invalid is None for r in results),
        "invalid": sum(r.invalid is not None for r in results),
        "failed": [list(r.steps) for r in results if r.failures],
        "seconds": round(sum(r.seconds for r in results), 3),
    }
    (target / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (target / "all.txt").write_text("\n".join(r.as_text() for r in results))
    return target
