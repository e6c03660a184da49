"""Concurrent sessions for the concurrency proofs, in the manner of PostgreSQL's isolation tester.

A session is a thread with its own connection, its own `application_name` and a correlation id,
acting as one runtime role (SET ROLE) for its whole life. `Together` releases one step in every
session at the same moment with a `threading.Barrier` and collects what each step returned or
the SQLSTATE it raised. Nothing here sleeps to synchronise.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from tests.helpers.support import role_connection

# Long enough for a loaded 2-core machine; a step that takes longer is reported, not waited for.
STEP_TIMEOUT_SECONDS = 120.0


@dataclass
class RaceSession:
    """One named connection. `name` is its application_name, as pg_stat_activity shows it."""

    name: str
    conn: psycopg.Connection
    correlation_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def pid(self) -> int:
        return self.conn.info.backend_pid


@dataclass
class SessionOutcome:
    """What one session's step did: its return value, or the error it raised."""

    session: str
    correlation_id: str
    pid: int
    value: Any = None
    sqlstate: str | None = None
    constraint: str | None = None
    message: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.sqlstate is None

    def as_json(self) -> dict[str, Any]:
        return {"session": self.session, "correlation_id": self.correlation_id, "pid": self.pid,
                "sqlstate": self.sqlstate, "constraint": self.constraint, "message": self.message,
                "seconds": round(self.seconds, 4)}


@contextmanager
def open_sessions(url: str, role: str, names: Sequence[str], *,
                  autocommit: bool = True) -> Iterator[list[RaceSession]]:
    """One connection per name, each switched to `role`, all closed at the end."""
    if not role:
        # Owner sessions are opened in the proof itself, where the role-usage scan can judge them.
        raise ValueError("open_sessions is for runtime roles; open owner connections in the proof")
    with ExitStack() as stack:
        yield [RaceSession(name, stack.enter_context(role_connection(url, role, name=name, autocommit=autocommit)))
               for name in names]


def session_names(proof: str, count: int) -> list[str]:
    """application_name of each session: short, because PostgreSQL keeps 63 bytes of it."""
    return [f"{proof}/s{n:02d}" for n in range(count)]


class Together:
    """Runs `step(session)` in every session, released together by one barrier.

    start() returns once the threads are waiting at the barrier, so a proof can watch the
    sessions (pg_locks) while they run; outcomes() waits for them. A psycopg error is an
    outcome (its SQLSTATE and constraint); anything else fails the proof.
    """

    def __init__(self, sessions: Sequence[RaceSession], step: Callable[[RaceSession], Any]) -> None:
        self.sessions = list(sessions)
        self.step = step
        self._barrier = threading.Barrier(len(self.sessions) + 1)
        self._outcomes: list[SessionOutcome | None] = [None] * len(self.sessions)
        self._crashes: list[BaseException] = []
        self._threads = [threading.Thread(target=self._run, args=(n, s), name=s.name, daemon=True)
                         for n, s in enumerate(self.sessions)]

    def start(self) -> Together:
        for thread in self._threads:
            thread.start()
        self._barrier.wait(STEP_TIMEOUT_SECONDS)  # the main thread is the last party: release
        return self

    def outcomes(self) -> list[SessionOutcome]:
        deadline = time.monotonic() + STEP_TIMEOUT_SECONDS
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            raise AssertionError(f"sessions still running after {STEP_TIMEOUT_SECONDS}s: {stuck}")
        if self._crashes:
            raise self._crashes[0]
        return [o for o in self._outcomes if o is not None]

    def _run(self, n: int, session: RaceSession) -> None:
        try:
            self._barrier.wait(STEP_TIMEOUT_SECONDS)
            started = time.perf_counter()
            outcome = SessionOutcome(session=session.name, correlation_id=session.correlation_id, pid=session.pid)
            try:
                outcome.value = self.step(session)
            except psycopg.Error as exc:
                outcome.sqlstate = exc.sqlstate
                outcome.constraint = exc.diag.constraint_name
                outcome.message = exc.diag.message_primary
                if not session.conn.autocommit:
                    session.conn.rollback()
            outcome.seconds = time.perf_counter() - started
            self._outcomes[n] = outcome
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread by outcomes()
            self._crashes.append(exc)


def run_together(sessions: Sequence[RaceSession], step: Callable[[RaceSession], Any]) -> list[SessionOutcome]:
    """Release `step` in every session at once and wait for all of them."""
    return Together(sessions, step).start().outcomes()


def sqlstates(outcomes: Sequence[SessionOutcome]) -> dict[str, int]:
    """How many steps succeeded ("ok") and how many raised each SQLSTATE."""
    return dict(Counter(o.sqlstate or "ok" for o in outcomes))


def timings(outcomes: Sequence[SessionOutcome]) -> dict[str, float]:
    """Step durations from release: the spread shows whether the sessions really overlapped."""
    seconds = sorted(o.seconds for o in outcomes)
    if not seconds:
        return {}
    return {"min_s": round(seconds[0], 4), "median_s": round(seconds[len(seconds) // 2], 4),
            "max_s": round(seconds[-1], 4)}
