"""The package's mutual exclusion for runs that span many transactions (outbox retention, the
ledger's conversion): the run's own session takes the lease on the job's row of
payment_outbox_locks (tables/0017, `_take_package_lease`), which lasts until the run gives it up
or its session ends (a crashed run frees it).

Only the owner can write that row, so no login outside the package can stop a run (an advisory
key could be taken by anyone). No transaction stays open for the run (CREATE INDEX CONCURRENTLY in
the conversion would wait for it), and no statement waits: a busy lease is tried again until the
run's bound, then the run gives up (exit 3) with the message of `_take_package_lease`, which
names the holder (pid, login, application, since when).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from runner import db
from runner.schema import lockwait

LOCK_POLL_SECONDS = 0.2
HELD = "PO036"


def available(conn: psycopg.Connection) -> bool:
    """Whether the database has the package's locks (tables/0017; a release point before it has not)."""
    return bool(db.first_row(conn.execute("SELECT to_regclass('payment_outbox.payment_outbox_locks') IS NOT NULL"))[0])


def bound_seconds(policy: lockwait.LockPolicy) -> float:
    """How long a run waits for its package lock: as long as its lock policy would wait in all."""
    return policy.timeout_seconds * (policy.retries + 1)


@contextmanager
def held(conn: psycopg.Connection, lock_name: str, policy: lockwait.LockPolicy,
         say: Callable[[str], None] = lambda line: None) -> Iterator[None]:
    """Holds the lease `lock_name` on `conn` (autocommit) while the block runs; lockwait.GaveUp
    after the policy's bound."""
    deadline = time.monotonic() + bound_seconds(policy)
    said = False
    while True:
        try:
            conn.execute("SELECT payment_outbox._take_package_lease(%s)", (lock_name,))
            break
        except psycopg.Error as exc:
            if db.sqlstate(exc) != HELD:
                raise
            message = str(exc).splitlines()[0]
            if time.monotonic() >= deadline:
                raise lockwait.GaveUp(f"{message}; gave up after {bound_seconds(policy):g}s (--lock-timeout "
                                      f"x (--lock-retries + 1)). Nothing was changed.") from exc
            if not said:
                say(f"{message}; waiting for it")
                said = True
            time.sleep(LOCK_POLL_SECONDS)  # polling period: between tries this session holds no snapshot
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            conn.execute("SELECT payment_outbox._end_package_lease(%s)", (lock_name,))
