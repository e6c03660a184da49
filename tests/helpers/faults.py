"""The fault proofs' own actions on the server, each on a connection of its own that calls no API.

Terminating a backend and changing a server setting take the superuser (`Server.admin_url` on the
embedded cluster); holding a table lock takes the package owner. Waiting for a session to reach a
wait state reads pg_stat_activity and pg_blocking_pids(): detection, never a fixed sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

POLL_SECONDS = 0.01
ABSENT_STANDBY = "outbox_fault_absent_standby"


def terminate_backend(admin_url: str, pid: int) -> bool:
    """pg_terminate_backend, waiting (up to 10 s) until the backend has exited."""
    with psycopg.connect(admin_url, autocommit=True, application_name="fault: terminate") as conn:
        return bool(conn.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()[0])


def backend_state(admin_url: str, pid: int) -> dict[str, Any] | None:
    """The wait state of one backend: wait_event_type, wait_event, blocked_by (pids); None when gone."""
    with psycopg.connect(admin_url, autocommit=True, application_name="fault: observe") as conn:
        row = conn.execute(
            "SELECT wait_event_type, wait_event, pg_blocking_pids(pid) FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
    return None if row is None else {"wait_event_type": row[0], "wait_event": row[1], "blocked_by": list(row[2])}


def wait_for_backend(admin_url: str, pid: int, condition: Callable[[dict[str, Any]], bool],
                     what: str, timeout: float = 30.0) -> dict[str, Any]:
    """Polls the backend's wait state until `condition` holds; fails naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = backend_state(admin_url, pid)
        if state is not None and condition(state):
            return state
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"backend {pid} never reached {what} within {timeout} s; last state {state}")


@contextmanager
def table_lock_held(owner_url: str, table: str, mode: str) -> Iterator[int]:
    """The owner holds LOCK TABLE `table` IN `mode` MODE until the block ends; yields its pid."""
    schema, name = table.split(".")
    with psycopg.connect(owner_url, application_name="fault: table lock") as conn:
        conn.execute(sql.SQL("LOCK TABLE {}.{} IN {} MODE").format(
            sql.Identifier(schema), sql.Identifier(name), sql.SQL(mode)))
        try:
            yield conn.info.backend_pid
        finally:
            conn.rollback()


@contextmanager
def commits_wait_for_a_standby(admin_url: str) -> Iterator[str]:
    """synchronous_standby_names names a standby that never connects: a COMMIT with
    synchronous_commit on writes its commit record locally, then waits (wait_event SyncRep) for an
    acknowledgement that never comes. A backend terminated there has committed, and its client
    never hears so. Reset on exit."""
    with psycopg.connect(admin_url, autocommit=True, application_name="fault: ALTER SYSTEM") as conn:
        conn.execute(sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(sql.Literal(ABSENT_STANDBY)))
        conn.execute("SELECT pg_reload_conf()")
        try:
            yield ABSENT_STANDBY
        finally:
            conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
            conn.execute("SELECT pg_reload_conf()")


def wait_for_setting(conn: psycopg.Connection, name: str, value: str, timeout: float = 30.0) -> None:
    """Until this session sees `name` = `value`: a backend rereads the configuration after a reload
    signal between commands, so the next command after that sees it."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()[0]
        if seen == value:
            return
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"{name}: have {seen!r}, want {value!r} after {timeout} s")
