"""Lock-wait detection for the concurrency proofs: pg_locks and pg_blocking_pids() read from a
monitor connection, never inferred from timing.

The monitor acts as outbox_readonly: pg_locks and pg_blocking_pids() are open to every role, and
the proofs already know the backend pids of their sessions, so it needs no owner connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

import psycopg

# One row per lock a watched backend is waiting for, with the backends it waits on.
WAITING_SQL = """
SELECT w.pid, w.locktype, w.mode, pg_blocking_pids(w.pid) AS blockers
FROM pg_locks AS w
WHERE NOT w.granted AND w.pid = ANY(%s)
"""


@dataclass(frozen=True)
class Wait:
    pid: int
    locktype: str
    mode: str
    blockers: tuple[int, ...]


def waiting(monitor: psycopg.Connection, pids: Collection[int]) -> list[Wait]:
    """The watched backends that wait for a heavyweight lock right now."""
    rows = monitor.execute(WAITING_SQL, (list(pids),)).fetchall()
    return [Wait(pid, locktype, mode, tuple(blockers)) for pid, locktype, mode, blockers in rows]


def wait_until_blocked(monitor: psycopg.Connection, waiters: Collection[int], blocker: int, *,
                       timeout: float = 60.0) -> list[Wait]:
    """Polls pg_locks until every pid in `waiters` waits on `blocker` (the isolation tester's
    way of knowing a step blocked); raises with what it saw when that does not happen in time."""
    deadline = time.monotonic() + timeout
    seen: list[Wait] = []
    while time.monotonic() < deadline:
        seen = waiting(monitor, waiters)
        if {w.pid for w in seen if blocker in w.blockers} == set(waiters):
            return seen
        time.sleep(0.001)  # polling period: spares the CPU the sessions need to reach their wait
    raise AssertionError(f"not every session blocked on pid {blocker} within {timeout}s: "
                         f"have {seen!r}, want each of {sorted(waiters)} waiting on it")


class WaitSampler:
    """Samples pg_locks for the watched pids from its own thread until stopped.

    Sampling can miss a wait shorter than one sample; a proof that must see every wait makes
    waits last (holds its transactions open) and also sets lock_timeout. The pause between
    samples only bounds the monitor's CPU use; nothing is synchronised by it.
    """

    def __init__(self, monitor: psycopg.Connection, pids: Collection[int], *, every: float = 0.002) -> None:
        self.monitor = monitor
        self.pids = list(pids)
        self.every = every
        self.samples = 0
        self.waits: list[Wait] = []
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lock-wait sampler", daemon=True)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(60)
        if self._error is not None and exc_info[0] is None:
            raise self._error

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.waits.extend(waiting(self.monitor, self.pids))
                self.samples += 1
                self._stop.wait(self.every)
        except BaseException as exc:  # noqa: BLE001 - re-raised by __exit__
            self._error = exc
