"""The ledger's conversion to a partitioned table, run by `outbox migrate` after its transaction
(and alone by `outbox convert-ledger`), as the package owner.

One conversion at a time: the package lease convert_ledger (runner/schema/package_lock.py; on a
database before tables/0017, a session advisory lock of its own), waited for by polling, never
inside a statement: a session blocked in pg_advisory_lock holds a
snapshot, and CREATE INDEX CONCURRENTLY waits for every snapshot older than its own, so two
runs blocking on one lock would wait for each other until the lock timeout.

Each step is re-runnable and finds from the catalog what an interrupted run left, so a crash at
any point is finished by running again:

1. `_stage_partitioned_ledger(bound)`: the partitioned ledger, empty, as payment_outbox_attempts_new;
   the bound the old table will hold rows below is recorded.
2. `CHECK (item_created_at < bound) NOT VALID` on the old table: a catalog change under a short
   lock_timeout (ACCESS EXCLUSIVE for an instant, retried after a timeout).
3. `VALIDATE CONSTRAINT`: scans the old table under SHARE UPDATE EXCLUSIVE, which no reader or
   writer conflicts with.
4. `CREATE UNIQUE INDEX CONCURRENTLY` of the three unique indexes the partitioned ledger needs
   (each with item_created_at); an index an interrupted build left INVALID is dropped
   CONCURRENTLY and built again.
5. One short transaction under the lock_timeout, retried: `_swap_partitioned_ledger()` renames
   both tables and attaches the old one (no scan, no index build), the functions whose SQL body
   names the ledger by oid are re-created, and an empty old ledger (a fresh install) is dropped.

Then `ensure_attempt_partitions()` creates the months ahead.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psycopg
from psycopg import sql

from runner import db
from runner.schema import lockwait, package, package_lock

STAGE_FUNCTION = Path("functions") / "_stage_partitioned_ledger.sql"
BEFORE_CHECK = "payment_outbox_attempts_item_created_at_before_check"
# The unique indexes the old table needs to become a partition, built CONCURRENTLY: name -> definition.
LEGACY_INDEXES = {
    "payment_outbox_attempts_legacy_pkey": "(outbox_id, attempt_no, item_created_at)",
    "payment_outbox_attempts_legacy_outbox_id_terminal_key":
        "(outbox_id, item_created_at) WHERE state IN ('DISPATCHED', 'FAILED')",
    "payment_outbox_attempts_legacy_idempotency_terminal_key":
        "(instruction_id, idempotency_key, item_created_at) WHERE state IN ('DISPATCHED', 'FAILED')",
}
DEFAULT_AHEAD = "3 months"
# pg_advisory_lock key: the first 8 bytes of sha256('payment_outbox.convert_ledger'), as a signed bigint.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"payment_outbox.convert_ledger").digest()[:8], "big", signed=True)
LOCK_POLL_SECONDS = 0.2
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    converted: bool  # False: the ledger was partitioned already
    kept_rows: bool  # the old table became payment_outbox_attempts_legacy (it had rows)
    partitions_created: list[str]


def applies_to(root: Path) -> bool:
    """Whether the package at `root` has the partitioned ledger (a release point before it has not)."""
    return (root / STAGE_FUNCTION).is_file()


def is_partitioned(conn: psycopg.Connection) -> bool:
    return bool(db.first_row(conn.execute(db.named_sql("ledger_is_partitioned")))[0])


def convert(url: str, *, say: Callable[[str], None] = print, root: Path | None = None,
            policy: lockwait.LockPolicy | None = None, ahead: str = DEFAULT_AHEAD) -> Outcome:
    """Convert the ledger if it is not partitioned yet, then create the partitions `ahead`."""
    root = root or package.sql_root()
    policy = policy or lockwait.resolve()
    with db.connection(url, application_name="outbox convert-ledger", autocommit=True) as conn:
        with _locked(conn, policy, say):
            converted, kept = False, False
            if not is_partitioned(conn):
                kept = _convert(conn, root, policy, say)
                converted = True
            created = _retrying(conn, policy, say, "ensure partitions",
                                lambda: [row[0] for row in conn.execute(db.named_sql("ensure_attempt_partitions"),
                                                                        {"ahead": ahead})])
        if created:
            say(f"ledger: created partitions {', '.join(created)}")
        return Outcome(converted=converted, kept_rows=kept, partitions_created=created)


@contextmanager
def _locked(conn: psycopg.Connection, policy: lockwait.LockPolicy,
            say: Callable[[str], None]) -> Iterator[None]:
    """One conversion at a time: the package lease convert_ledger (a row only the owner can write,
    runner/schema/package_lock.py; exit 3 naming the holder after the policy's bound); on a
    database before tables/0017, the advisory lock of earlier releases."""
    if package_lock.available(conn):
        with package_lock.held(conn, "convert_ledger", policy, lambda line: say(f"ledger conversion: {line}")):
            yield
        return
    _lock(conn, say)
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _lock(conn: psycopg.Connection, say: Callable[[str], None]) -> None:
    """The advisory lock of releases before tables/0017, polled (see the module's docstring)."""
    said = False
    while not db.first_row(conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)))[0]:
        if not said:
            say("ledger conversion: another conversion is running; waiting for it")
            said = True
        time.sleep(LOCK_POLL_SECONDS)  # polling period of the lock; between tries this session holds no snapshot


def _convert(conn: psycopg.Connection, root: Path, policy: lockwait.LockPolicy, say: Callable[[str], None]) -> bool:
    bound = _retrying(conn, policy, say, "stage",
                      lambda: db.first_row(conn.execute(db.named_sql("ledger_conversion_stage")))[0])
    say(f"ledger conversion: partitioned ledger staged; the old table will hold items created before {bound}")
    state = db.first_row(conn.execute(db.named_sql("ledger_conversion_check_state"), {"constraint_name": BEFORE_CHECK}))
    if state[0] is None:
        _retrying(conn, policy, say, "add CHECK NOT VALID", lambda: conn.execute(
            sql.SQL("ALTER TABLE payment_outbox.payment_outbox_attempts ADD CONSTRAINT {} "
                    "CHECK (item_created_at < {}) NOT VALID").format(sql.Identifier(BEFORE_CHECK), sql.Literal(bound))))
    if not state[0]:
        _retrying(conn, policy, say, "VALIDATE CHECK", lambda: conn.execute(
            sql.SQL("ALTER TABLE payment_outbox.payment_outbox_attempts VALIDATE CONSTRAINT {}").format(
                sql.Identifier(BEFORE_CHECK))), in_transaction=False)
        say(f"ledger conversion: {BEFORE_CHECK} validated")
    for name, definition in LEGACY_INDEXES.items():
        _build_index(conn, policy, say, name, definition)
    kept = bool(_retrying(conn, policy, say, "swap", lambda: _swap(conn, root)))
    say("ledger conversion: the ledger is partitioned" +
        ("; the old table is its partition payment_outbox_attempts_legacy" if kept else
         "; the old table was empty and is dropped"))
    return kept


def _build_index(conn: psycopg.Connection, policy: lockwait.LockPolicy, say: Callable[[str], None],
                 name: str, definition: str) -> None:
    valid = db.first_row(conn.execute(db.named_sql("ledger_conversion_index_state"), {"index_name": name}))[0]
    if valid:
        return
    if valid is not None:  # an interrupted CONCURRENTLY build left it INVALID
        _retrying(conn, policy, say, f"drop invalid {name}", lambda: conn.execute(
            sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS payment_outbox.{}").format(sql.Identifier(name))),
            in_transaction=False)

    def build() -> None:
        try:
            conn.execute(sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON payment_outbox.payment_outbox_attempts {}")
                         .format(sql.Identifier(name), sql.SQL(definition)))
        except psycopg.Error:
            conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS payment_outbox.{}").format(sql.Identifier(name)))
            raise
    _retrying(conn, policy, say, f"build {name}", build, in_transaction=False)
    say(f"ledger conversion: index {name} built concurrently")


def _swap(conn: psycopg.Connection, root: Path) -> bool:
    kept = bool(db.first_row(conn.execute("SELECT payment_outbox._swap_partitioned_ledger()"))[0])
    # A function with a SQL-standard body (BEGIN ATOMIC) names the tables it reads by oid: created
    # again, it reads the partitioned ledger, and no longer depends on the old table.
    for path in sorted((root / "functions").glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        if "BEGIN ATOMIC" in text and "payment_outbox.payment_outbox_attempts" in text:
            conn.execute(text)
    if not kept:
        conn.execute("DROP TABLE payment_outbox.payment_outbox_attempts_legacy")
    return kept


def _retrying(conn: psycopg.Connection, policy: lockwait.LockPolicy, say: Callable[[str], None], step: str,
                 action: Callable[[], T], *, in_transaction: bool = True) -> T:
    """`action` under the policy's lock_timeout, again after a lock timeout or deadlock."""
    for attempt in range(policy.retries + 1):
        try:
            if in_transaction:
                with conn.transaction():
                    conn.execute("SELECT set_config('lock_timeout', %s, true)", (policy.lock_timeout_setting,))
                    return action()
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (policy.lock_timeout_setting,))
            try:
                return action()
            finally:
                conn.execute("RESET lock_timeout")
        except psycopg.Error as exc:
            reason = lockwait.RETRYABLE.get(db.sqlstate(exc) or "")
            if reason is None:
                raise
            if attempt == policy.retries:
                raise lockwait.GaveUp(
                    f"ledger conversion: {step}: gave up after {attempt + 1} attempt(s) ({reason}, SQLSTATE "
                    f"{db.sqlstate(exc)}) behind {_blockers(conn, policy)}. The conversion is unfinished "
                    f"(check_invariants() names ledger_conversion_unfinished and its deadline): run outbox "
                    f"migrate again once the blocker is gone, or give it longer (--lock-timeout, --lock-retries)."
                ) from exc
            delay = policy.backoff(attempt + 1)
            say(f"ledger conversion: {step}: {reason} (SQLSTATE {db.sqlstate(exc)}); retry "
                f"{attempt + 1}/{policy.retries} in {delay:g}s")
            time.sleep(delay)  # backoff: lets the blocking transactions finish before the next attempt
    raise AssertionError("unreachable")


def _blockers(conn: psycopg.Connection, policy: lockwait.LockPolicy) -> str:
    """Who holds a lock on the tables the conversion works on: every session but this one holding
    one on the ledger or the staged table, named as outbox migrate names its blockers."""
    del policy
    rows = conn.execute(db.named_sql("ledger_conversion_blockers")).fetchall()
    found = [lockwait.Blocker(pid, app, user, state, float(seconds) if seconds is not None else None).describe()
             for pid, app, user, state, seconds in rows]
    return "; ".join(found) or "a lock no session holds any more"
