"""Prompt wake-up (`outbox worker --listen`): one LISTEN connection per worker process, and the
signal its worker threads wait on instead of sleeping out their poll interval.

Notifications only shorten a wait; they are never needed. An operator switches them on in the
package's settings (set_outbox_settings(p_notify_on_enqueue => true)); with them off, behind a
transaction-pooling PgBouncer (where LISTEN cannot work), or while the listen connection is down,
the threads poll at their interval as they always do. Transitions are JSON log lines:
listen_started, listen_lost (with the fallback: polling), listen_stopped.

Debounced: the listener waits for one notification, drains every other one already received,
then wakes the threads once; each thread then claims until a claim finds nothing. A dead listen
connection is noticed by the wait itself (a terminated backend or a closed socket raises), by a
no-op query after every quiet heartbeat (a silent network loss), and by TCP keepalives and
tcp_user_timeout below it; the listener then reconnects, and wakes the threads once after it
does, for what was enqueued while nobody listened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from runner import db
from runner.client import Client, Role

Emit = Callable[[dict[str, Any]], None]
HEARTBEAT_SECONDS = 5.0
RECONNECT_SECONDS = 1.0
# libpq's own dead-peer detection for the listen connection, which otherwise only ever waits.
KEEPALIVES: dict[str, int] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                              "keepalives_count": 3, "tcp_user_timeout": 30_000}


class WakeSignal:
    """What the worker threads wait on. A counter: every wake-up adds one, and a waiter passes the
    count it read before its last claim, so a wake-up that came during the claim is never missed."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0
        self._closed = False
        self.listening = False  # whether a listen connection is up (for the log lines only)

    def count(self) -> int:
        with self._changed:
            return self._count

    def wake(self) -> None:
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    def close(self) -> None:
        """Ends every wait, now and from now on (the process is stopping)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait(self, seen: int, seconds: float) -> bool:
        """Waits until a wake-up after `seen`, a close, or `seconds`; True when woken."""
        with self._changed:
            self._changed.wait_for(lambda: self._count != seen or self._closed, seconds)
            return self._count != seen


class Listener:
    """The listen connection's thread: LISTEN, wait, wake; reconnect when the connection dies."""

    def __init__(self, url: str, name: str, wake: WakeSignal, stopping: Callable[[], bool], emit: Emit, *,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.url = url
        self.name = name
        self.wake = wake
        self.stopping = stopping
        self.emit = emit
        self.heartbeat_seconds = heartbeat_seconds

    def start(self) -> threading.Thread:
        """Runs the listener in a daemon thread: the process never waits for a listen connection to
        finish a wait before it exits."""
        thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        lost = False
        while not self.stopping():
            try:
                with db.connection(self.url, application_name=self.name, autocommit=True, role=str(Role.EXECUTOR),
                                   **KEEPALIVES) as conn:
                    channel = Client(conn).wakeup_channel()
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.wake.listening = True
                    self.emit({"event": "listen_started", "listener": self.name, "channel": channel,
                               "pid": conn.info.backend_pid, "reconnected": lost})
                    if lost:
                        self.wake.wake()
                    lost = False
                    self._listen(conn)
            except psycopg.Error as exc:
                self.wake.listening = False
                lost = True
                self.emit({"event": "listen_lost", "listener": self.name, "sqlstate": db.sqlstate(exc),
                           "error": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                           "fallback": "polling", "reconnect_seconds": RECONNECT_SECONDS})
                self.wake.wait(self.wake.count(), RECONNECT_SECONDS)  # ends early only on a stop
        self.wake.listening = False
        self.emit({"event": "listen_stopped", "listener": self.name})

    def _listen(self, conn: psycopg.Connection) -> None:
        while not self.stopping():
            notified = False
            for _ in conn.notifies(timeout=self.heartbeat_seconds, stop_after=1):  # run out: it holds the lock
                notified = True
            if notified:
                for _ in conn.notifies(timeout=0):  # debounce: whatever else arrived is this wake-up
                    pass
                self.wake.wake()
            else:
                conn.execute("SELECT 1")  # a quiet heartbeat: a dead connection raises here
