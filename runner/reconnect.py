"""Surviving a lost connection or a failover: which errors mean "reconnect", the capped backoff
every long-running part of the runner waits between attempts, and the JSON line of each attempt.

A worker thread, the LISTEN connection, the repair loop: each holds one connection, and each
keeps the same loop: work on the connection until an error, then `Reconnect.wait()` (one
`reconnecting` line, then a backoff of 0.2 s doubling up to 5 s), then connect again, and say
`reconnected` with the host and port it reached (after a failover: the new leader, which a
multi-host URL with target_session_attrs=read-write finds). The backoff starts again from the
first step after a connection that worked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from runner import db

Emit = Callable[[dict[str, Any]], None]
FIRST_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 5.0
# Shutdowns: the server (57P01 admin, 57P02 crash of another backend, 57P03 starting up or in recovery).
SHUTDOWN_STATES = {"57P01": "shutdown", "57P02": "crash_shutdown", "57P03": "cannot_connect_now"}
READ_ONLY_STATE = "25006"  # read_only_sql_transaction: a standby, or a primary demoted since we connected


def cause(exc: BaseException) -> str | None:
    """Why this error means the connection is lost or points at the wrong node, or None when it is
    an error of the statement itself (the connection is fine: reconnecting would not help).

    connection_lost: class 08, or no SQLSTATE at all from a psycopg OperationalError/InterfaceError
    (a closed socket, a refused or timed-out connect, "the connection is closed");
    shutdown/crash_shutdown/cannot_connect_now: 57P01/57P02/57P03; read_only: 25006."""
    state = db.sqlstate(exc)
    if state is None:
        return "connection_lost" if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) else None
    if state.startswith("08"):
        return "connection_lost"
    if state in SHUTDOWN_STATES:
        return SHUTDOWN_STATES[state]
    if state == READ_ONLY_STATE:
        return "read_only"
    return None


def is_reconnectable(exc: BaseException) -> bool:
    return cause(exc) is not None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class Backoff:
    """0.2 s, 0.4 s, 0.8 s, ... at most `cap`; reset() after a connection that worked."""

    first: float = FIRST_BACKOFF_SECONDS
    cap: float = MAX_BACKOFF_SECONDS
    attempt: int = 0

    def next(self) -> float:
        delay = min(self.cap, self.first * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class Reconnect:
    """One component's reconnections: `failed(exc)` logs the attempt and returns the backoff to
    wait; `connected(conn)` logs where a reconnection landed and resets the backoff."""

    component: str
    url: str
    emit: Emit
    backoff: Backoff = field(default_factory=Backoff)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def attempts(self) -> int:
        return self.backoff.attempt

    def failed(self, exc: BaseException, event: str = "reconnecting", **fields: Any) -> float:
        """Logs the attempt as `event` (a component's own event name, e.g. worker_error) and
        returns the seconds to wait before connecting again."""
        delay = self.backoff.next()
        self.emit({"event": event, "component": self.component, **self.extra, "attempt": self.backoff.attempt,
                   "cause": cause(exc) or "error", "sqlstate": db.sqlstate(exc), "error": first_line(exc),
                   "hosts": db.hosts(self.url), "backoff_seconds": round(delay, 3), **fields})
        return delay

    def connected(self, conn: psycopg.Connection) -> None:
        if self.backoff.attempt:
            self.emit({"event": "reconnected", "component": self.component, "attempts": self.backoff.attempt,
                       "host": conn.info.host, "port": conn.info.port, "pid": conn.info.backend_pid, **self.extra})
        self.backoff.reset()
