"""`outbox retention`: retires the ledger's partitions older than a window whose items are all terminal.

Runs as the package owner (DATABASE_URL, like `outbox migrate`): DETACH PARTITION ... CONCURRENTLY
needs the ledger's owner and cannot run inside a function or transaction. The decision is SQL any
outbox_operator can run (attempt_partition_retention(), which --dry-run prints). For each partition
older than the window:

- keep: an item created in its range is still in pending (waiting, in flight or held for an
  operator); the partition is kept and its unfinished items named, whatever its age;
- retire: `_begin_partition_retirement` checks again, records the sequence ids its items held and
  marks it detaching; `DETACH PARTITION ... CONCURRENTLY` (or `... FINALIZE`, for a detach an
  earlier run left pending); the export to DIR/<partition>.csv when asked; `_retire_partition`
  drops it and records it retired.

On Citus (the ledger distributed, outbox migrate --citus) it refuses and changes nothing: Citus
cannot DETACH PARTITION ... CONCURRENTLY a distributed table, and a retired key there would answer
PO004, not PO034 (docs/scale-out.md, Retention).

A partition a crashed run left detaching is finished by the next run. A run holds the package lease
`retention` (runner/schema/package_lock.py, a row only the owner can write): a second run at once
waits for it up to its bound, then logs retention_blocked naming the holder and exits 3. Each
step is one JSON line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from runner import db
from runner.client import Client
from runner.process import emit_json
from runner.schema import citus, lockwait, package_lock

DEFAULT_AHEAD = "3 months"
NOT_RETIRABLE = "PO033"
Emit = Callable[[dict[str, Any]], None]


class RetentionRefused(Exception):
    """A ledger this command must not retire partitions of (the CLI exits 2, nothing changed)."""


@dataclass(frozen=True)
class Options:
    window: str
    export_dir: Path | None = None
    dry_run: bool = False
    ahead: str = DEFAULT_AHEAD


def run(url: str, options: Options, *, emit: Emit = emit_json, policy: lockwait.LockPolicy | None = None) -> int:
    """One retention run; 0 when every partition it should retire was retired (or kept, with reason)."""
    policy = policy or lockwait.resolve()
    if options.export_dir is not None and not options.dry_run and not options.export_dir.is_dir():
        raise FileNotFoundError(f"--export {options.export_dir}: not a directory")
    with db.connection(url, application_name="outbox retention", autocommit=True) as conn:
        if citus.is_distributed(conn):
            raise RetentionRefused(
                "the ledger is distributed on Citus, which cannot DETACH PARTITION ... CONCURRENTLY a "
                "distributed table: no partition was retired (nothing changed); keep the ledger's "
                "partitions, and see docs/scale-out.md, Retention")
        client = Client(conn)
        if options.dry_run:
            for verdict in client.retention_plan(options.window):
                emit(_verdict_line(verdict, dry_run=True))
            return 0
        try:
            with package_lock.held(conn, "retention", policy,
                                   lambda line: emit({"event": "retention_waiting", "reason": line})):
                _run(conn, options, emit, policy)
        except lockwait.GaveUp as exc:
            emit({"event": "retention_blocked", "reason": str(exc)})
            raise
    return 0


def _run(conn: psycopg.Connection, options: Options, emit: Emit, policy: lockwait.LockPolicy) -> None:
    """The run under its package lock: the partitions ahead, then each partition older than the window."""
    client = Client(conn)
    for created in client.ensure_partitions(options.ahead):
        emit({"event": "partition_created", "partition": created.partition_name,
              "range_from": created.range_from, "range_to": created.range_to})
    for verdict in client.retention_plan(options.window):
        if verdict.action == "keep":
            emit(_verdict_line(verdict, dry_run=False))
            continue
        try:
            retire(conn, verdict.partition_name, options.export_dir, emit, policy)
        except psycopg.Error as exc:
            if db.sqlstate(exc) != NOT_RETIRABLE:
                raise
            # An item of it became unfinished after the plan was read (or the state moved):
            # the partition stays, and the next run decides again.
            emit({"event": "partition_kept", "partition": verdict.partition_name,
                  "sqlstate": NOT_RETIRABLE, "reason": str(exc).splitlines()[0]})


def _verdict_line(verdict: Any, *, dry_run: bool) -> dict[str, Any]:
    event = {"keep": "partition_kept", "retire": "partition_retirable", "finish": "partition_retirement_unfinished"}
    line: dict[str, Any] = {"event": event[verdict.action], "partition": verdict.partition_name,
                            "range_from": verdict.range_from, "range_to": verdict.range_to, "dry_run": dry_run}
    if verdict.action == "keep":
        line["unfinished_items"] = verdict.unfinished_items
        line["unfinished_outbox_ids"] = [str(i) for i in verdict.unfinished_outbox_ids or []]
    return line


def retire(conn: psycopg.Connection, name: str, export_dir: Path | None, emit: Emit,
           policy: lockwait.LockPolicy) -> None:
    """Every step of one partition's retirement, each skipped when an earlier run did it."""
    client = Client(conn)
    begun = client.begin_retirement(name)
    emit({"event": "partition_detaching", "partition": name, "items": begun.items, "attempts": begun.attempts})
    detach(conn, name, policy, emit)
    exported = export(conn, name, export_dir) if export_dir is not None else None
    if exported is not None:
        emit({"event": "partition_exported", "partition": name, "file": str(exported)})
    client.retire_partition(name, None if exported is None else str(exported))
    emit({"event": "partition_retired", "partition": name, "items": begun.items, "attempts": begun.attempts,
          "exported_to": None if exported is None else str(exported)})


def detach(conn: psycopg.Connection, name: str, policy: lockwait.LockPolicy, emit: Emit) -> None:
    """DETACH ... CONCURRENTLY, or FINALIZE when an interrupted one left the partition detach pending."""
    for attempt in range(policy.retries + 1):
        pending = db.first_row(conn.execute(db.named_sql("partition_attachment"), {"partition_name": name}))[0]
        if pending is None:
            return  # detached already
        mode = sql.SQL("FINALIZE") if pending else sql.SQL("CONCURRENTLY")
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (policy.lock_timeout_setting,))
        try:
            conn.execute(sql.SQL("ALTER TABLE payment_outbox.payment_outbox_attempts DETACH PARTITION {} {}")
                         .format(sql.Identifier("payment_outbox", name), mode))
            return
        except psycopg.Error as exc:
            reason = lockwait.RETRYABLE.get(db.sqlstate(exc) or "")
            if reason is None or attempt == policy.retries:
                raise
            delay = policy.backoff(attempt + 1)
            emit({"event": "partition_detach_retry", "partition": name, "reason": reason,
                  "sqlstate": db.sqlstate(exc), "retry": attempt + 1, "delay_seconds": delay})
            time.sleep(delay)  # backoff: lets the readers of the ledger finish before the next attempt
        finally:
            conn.execute("RESET lock_timeout")


def export(conn: psycopg.Connection, name: str, export_dir: Path) -> Path:
    """The detached partition's rows as CSV with a header, in DIR/<partition>.csv, written whole
    (a temporary file, flushed to disk, then renamed, then the directory flushed) so a file by that
    name is always complete, and on disk before the partition is dropped."""
    target = export_dir / f"{name}.csv"
    partial = export_dir / f".{name}.csv.partial"
    query = sql.SQL("COPY (SELECT * FROM {} ORDER BY item_created_at, outbox_id, attempt_no) "
                    "TO STDOUT WITH (FORMAT csv, HEADER)").format(sql.Identifier("payment_outbox", name))
    with partial.open("wb") as handle:
        with conn.cursor() as cur, cur.copy(query) as copy:
            for chunk in copy:
                handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(target)
    # The rename lives in the directory: synced too, or a power loss could lose the file, the only
    # copy once the partition is dropped.
    directory = os.open(export_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return target
