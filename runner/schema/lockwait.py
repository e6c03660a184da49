"""How `outbox migrate` waits for locks: a short lock_timeout per statement, retries with backoff,
and a watch that can say afterwards which lock the run waited for and who held it.

The watch is a second connection that samples pg_locks and pg_blocking_pids() for the migrating
backend while a run is under way; it only observes, so its sampling period decides how short a
wait it can name, never what the run does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg

from runner import db

TIMEOUT_VARIABLE = "OUTBOX_MIGRATE_LOCK_TIMEOUT"
RETRIES_VARIABLE = "OUTBOX_MIGRATE_LOCK_RETRIES"
DEFAULT_TIMEOUT_SECONDS = 3.0
DEFAULT_RETRIES = 5
# SQLSTATEs after which the whole transaction is rolled back and tried again.
RETRYABLE = {"55P03": "lock_timeout", "40P01": "deadlock"}


class GaveUp(Exception):
    """A run gave up waiting for a lock after its policy's retries: the command exits 3, naming
    who held it."""


class PolicyError(ValueError):
    """A lock timeout or retry count that is not a usable number."""


@dataclass(frozen=True)
class LockPolicy:
    """lock_timeout for every statement of a run; after a timeout the run's transaction rolls back
    and the run starts again after first_backoff, 2 x first_backoff, ... (at most max_backoff),
    `retries` times, then gives up."""

    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    retries: int = DEFAULT_RETRIES
    first_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1, 2, ...)."""
        return min(self.max_backoff_seconds, self.first_backoff_seconds * 2 ** (retry - 1))

    @property
    def lock_timeout_setting(self) -> str:
        return f"{max(1, round(self.timeout_seconds * 1000))}ms"


def resolve(timeout_seconds: float | None = None, retries: int | None = None,
            environ: Mapping[str, str] | None = None) -> LockPolicy:
    """The policy of one run: the arguments given, else the environment, else the defaults."""
    env = os.environ if environ is None else environ
    if timeout_seconds is None:
        timeout_seconds = _number(env.get(TIMEOUT_VARIABLE), TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_SECONDS)
    if retries is None:
        retries = int(_number(env.get(RETRIES_VARIABLE), RETRIES_VARIABLE, DEFAULT_RETRIES, whole=True))
    if not 0 < timeout_seconds <= 600:
        raise PolicyError(f"the lock timeout must be more than 0 and at most 600 seconds, got {timeout_seconds}")
    if not 0 <= retries <= 100:
        raise PolicyError(f"the lock retries must be between 0 and 100, got {retries}")
    return LockPolicy(timeout_seconds=timeout_seconds, retries=retries)


def _number(text: str | None, source: str, default: float, *, whole: bool = False) -> float:
    if text is None or not text.strip():
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        kind = "a whole number" if whole else "a number of seconds"
        raise PolicyError(f"{source} must be {kind}, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
        raise PolicyError(f"{source} must be a finite number, got {text!r}")
    return value


@dataclass(frozen=True)
class Blocker:
    pid: int
    application_name: str
    user: str
    state: str
    transaction_seconds: float | None

    def describe(self) -> str:
        opened = f", transaction open {self.transaction_seconds}s" if self.transaction_seconds is not None else ""
        name = f" {self.application_name!r}" if self.application_name else ""
        return f"pid {self.pid}{name} ({self.user or 'another user'}, {self.state}{opened})"


@dataclass(frozen=True)
class Wait:
    """One lock the migrating backend waited for, and who stood in its way."""

    mode: str
    object: str
    blockers: tuple[Blocker, ...]

    def describe(self) -> str:
        held = "; ".join(b.describe() for b in self.blockers) or "no backend named"
        return f"{self.mode} on {self.object}, behind {held}"


class Watch:
    """Samples the waits of backend `pid` from its own connection until closed; `last` is the most
    recent wait seen since the last reset()."""

    def __init__(self, url: str, pid: int, *, every_seconds: float = 0.05) -> None:
        self.url, self.pid, self.every_seconds = url, pid, every_seconds
        self.last: Wait | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="migrate lock watch", daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def reset(self) -> None:
        with self._lock:
            self.last = None

    def _run(self) -> None:
        try:
            with db.connection(self.url, application_name="outbox migrate (lock watch)", autocommit=True) as conn:
                while not self._stop.is_set():
                    seen = waits(conn, self.pid)
                    if seen:
                        with self._lock:
                            self.last = seen[0]
                    self._stop.wait(self.every_seconds)
        except psycopg.Error:
            return  # the watch only explains waits; the run does not depend on it


def waits(conn: psycopg.Connection, pid: int) -> list[Wait]:
    """The locks backend `pid` waits for now, each with its blockers."""
    grouped: dict[tuple[str, str], list[Blocker]] = {}
    for locktype, mode, bpid, obj, app, user, state, seconds in conn.execute(
            db.named_sql("migrate_lock_waits"), {"pid": pid}):
        del locktype
        grouped.setdefault((mode, obj), []).append(
            Blocker(bpid, app, user, state, float(seconds) if seconds is not None else None))
    return [Wait(mode, obj, tuple(blockers)) for (mode, obj), blockers in grouped.items()]
