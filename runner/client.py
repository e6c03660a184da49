"""The one client of the package's SQL API: every call the worker, repair, the bench and the
tests make goes through here. Its queries are the named blocks of runner/sql/api.sql."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from runner import db

QUERY_HEADER = re.compile(r"^-- name: ([a-z_]+)$", re.MULTILINE)


class Role(StrEnum):
    """The runtime roles (sql/roles/payment_outbox_roles.sql creates them; a unit test keeps the two equal)."""

    INGEST = "outbox_ingest"
    EXECUTOR = "outbox_executor"
    REPAIR = "outbox_repair"
    READONLY = "outbox_readonly"
    AUDITOR = "outbox_auditor"
    OPERATOR = "outbox_operator"


@dataclass(frozen=True)
class Enqueued:
    outbox_id: UUID
    sequence_id: int
    created_at: datetime
    state: str


@dataclass(frozen=True)
class EnqueuedItem:
    """One item of a payment file, as enqueue_payment_outbox_batch answers it (item_no from 1)."""

    item_no: int
    outbox_id: UUID
    sequence_id: int
    created_at: datetime
    state: str


@dataclass(frozen=True)
class FileItem:
    """One item of a payment file to enqueue."""

    instruction_id: str
    participant_id: str
    idempotency_key: str
    rail_type: str
    payload: Any

    def as_json(self) -> dict[str, Any]:
        return {"instruction_id": self.instruction_id, "participant_id": self.participant_id,
                "idempotency_key": self.idempotency_key, "rail_type": self.rail_type, "payload": self.payload}


@dataclass(frozen=True)
class ClaimedItem:
    """One claimed item: attempt_no is the fencing token of its completion."""

    outbox_id: UUID
    attempt_no: int
    instruction_id: str
    participant_id: str
    sequence_id: int
    idempotency_key: str
    rail_type: str
    payload: dict[str, Any]
    attempt_count: int
    claimed_at: datetime


@dataclass(frozen=True)
class Completed:
    attempt_no: int
    state: str


@dataclass(frozen=True)
class AttemptOutcome:
    """One completion of a batch: what to record for a claimed attempt."""

    outbox_id: UUID
    attempt_no: int
    state: str
    error_code: str | None = None
    error_message: str | None = None
    rail_reference: str | None = None


@dataclass(frozen=True)
class BatchCompleted:
    """complete_outbox_attempts' answer for one completion: outcome completed or stale."""

    item_no: int
    outbox_id: UUID
    attempt_no: int | None
    state: str | None
    outcome: str


@dataclass(frozen=True)
class Repaired:
    outbox_id: UUID
    attempt_no: int
    previous_state: str
    new_state: str
    stale_seconds: Decimal
    worker_id: str | None


@dataclass(frozen=True)
class Bucket:
    """On Citus: a claim bucket (one shard) and the key its calls are routed by."""

    bucket: int
    bucket_key: str


@dataclass(frozen=True)
class Claim:
    """An in-flight claim, as list_stuck_dispatching and payment_outbox_in_flight show it."""

    outbox_id: UUID
    attempt_no: int
    worker_id: str


@dataclass(frozen=True)
class Violation:
    invariant: str
    outbox_id: UUID | None
    participant_id: str | None
    detail: str | None


@dataclass(frozen=True)
class QueueMetrics:
    queue_depth: int
    due_now: int
    in_flight: int
    oldest_due_age_seconds: Decimal


@dataclass(frozen=True)
class LedgerRow:
    outbox_id: UUID
    attempt_no: int
    state: str
    worker_id: str | None
    error_code: str | None


@dataclass(frozen=True)
class Settings:
    max_attempt_count: int
    notify_on_enqueue: bool
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class SettingChange:
    setting: str
    old_value: str | None
    new_value: str | None
    changed_by: str


@dataclass(frozen=True)
class HistoryRow:
    """One state change of an item, as item_history returns it (attempt 0: ENQUEUED)."""

    outbox_id: UUID
    instruction_id: str
    idempotency_key: str
    participant_id: str
    sequence_id: int
    rail_type: str
    attempt_no: int
    state: str
    changed_at: datetime
    worker_id: str | None
    claimed_at: datetime | None
    completed_at: datetime | None
    latency_ms: Decimal | None
    error_code: str | None
    error_message: str | None
    rail_reference: str | None
    actor: str | None = None  # who made an operator's change (RELEASED, FAILED by fail_quarantined)
    reason: str | None = None  # the operator's reason, or why the item was QUARANTINED


@dataclass(frozen=True)
class QuarantinedItem:
    """One item waiting in QUARANTINED for an operator, as list_quarantined returns it."""

    outbox_id: UUID
    instruction_id: str
    idempotency_key: str
    participant_id: str
    sequence_id: int
    rail_type: str
    attempt_count: int
    quarantined_at: datetime
    quarantine_reason: str


@dataclass(frozen=True)
class Decision:
    """The ledger row an operator's release (RELEASED) or fail (FAILED) appended."""

    outbox_id: UUID
    attempt_no: int
    state: str


@dataclass(frozen=True)
class KeyConflict:
    """One item of a key held by two items (tables/0010); `registered`: the register names it."""

    instruction_id: str
    idempotency_key: str
    outbox_id: UUID
    item_created_at: datetime
    item_state: str
    registered: bool
    detected_at: datetime


@dataclass(frozen=True)
class PartitionCreated:
    """A ledger partition ensure_attempt_partitions created."""

    partition_name: str
    range_from: datetime
    range_to: datetime


@dataclass(frozen=True)
class RetentionVerdict:
    """What retention does with one ledger partition older than the window: retire, keep or finish."""

    partition_name: str
    range_from: datetime | None
    range_to: datetime
    action: str
    unfinished_items: int
    unfinished_outbox_ids: list[UUID] | None


@dataclass(frozen=True)
class RetirementBegun:
    items: int
    attempts: int


@dataclass(frozen=True)
class Retired:
    retired: None


@dataclass(frozen=True)
class AttemptPartition:
    """A row of payment_outbox_attempt_partitions."""

    partition_name: str
    range_from: datetime | None
    range_to: datetime
    state: str
    items: int | None
    attempts: int | None
    exported_to: str | None
    retired_at: datetime | None
    retired_by: str | None


@dataclass(frozen=True)
class RailChange:
    """What pause_rail or resume_rail did: the rail's state after the call and before it, the
    items whose paused flag it set or cleared."""

    rail_type: str
    paused: bool
    was_paused: bool
    items_changed: int


@dataclass(frozen=True)
class PausedRail:
    """A rail paused now, as the view payment_outbox_paused_rails shows it."""

    rail_type: str
    reason: str
    actor: str
    changed_by: str
    paused_since: datetime
    waiting_items: int
    due_items: int


@dataclass(frozen=True)
class RailHistoryRow:
    """One pause_rail or resume_rail call, from payment_outbox_rail_history."""

    history_id: int
    rail_type: str
    request: str
    was_paused: bool
    reason: str | None
    actor: str
    items_changed: int
    changed_at: datetime
    changed_by: str


@cache
def queries() -> dict[str, str]:
    """The named queries of runner/sql/api.sql."""
    text = db.named_sql("api")
    parts = QUERY_HEADER.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


class Client:
    """The SQL API on one connection, which acts as whatever role it was opened with."""

    def __init__(self, conn: psycopg.Connection, *, prepare: bool | None = None) -> None:
        self.conn = conn
        self.prepare = prepare  # True: server-side prepared statements at once (a hot loop); None: psycopg's default

    @classmethod
    @contextmanager
    def connect(cls, url: str | None, role: Role | None, *, name: str = "outbox",
                autocommit: bool = True) -> Iterator[Client]:
        """A client on its own connection acting as `role` (None: the login itself, e.g. the owner)."""
        with db.connection(url, application_name=name, autocommit=autocommit,
                           role=None if role is None else str(role)) as conn:
            yield cls(conn)

    def enqueue(self, instruction_id: str, participant_id: str, idempotency_key: str, rail_type: str,
                payload: Any) -> Enqueued:
        """enqueue_payment_outbox (outbox_ingest)."""
        return self._one(Enqueued, "enqueue", instruction_id=instruction_id, participant_id=participant_id,
                         idempotency_key=idempotency_key, rail_type=rail_type,
                         payload=payload if isinstance(payload, Jsonb) else Jsonb(payload))

    def enqueue_many(self, calls: Iterable[tuple[str, str, str, str, Any]]) -> list[Enqueued]:
        """One enqueue per (instruction_id, participant_id, idempotency_key, rail_type, payload),
        pipelined in one round trip, in the connection's transaction."""
        params = [{"instruction_id": i, "participant_id": p, "idempotency_key": k, "rail_type": r,
                   "payload": payload if isinstance(payload, Jsonb) else Jsonb(payload)}
                  for i, p, k, r, payload in calls]
        found: list[Enqueued] = []
        with self.conn.cursor(row_factory=class_row(Enqueued)) as cur:
            cur.executemany(queries()["enqueue"], params, returning=True)
            while True:
                found.extend(cur.fetchall())
                if not cur.nextset():
                    break
        return found

    def enqueue_batch(self, items: Iterable[FileItem]) -> list[EnqueuedItem]:
        """enqueue_payment_outbox_batch (outbox_ingest): a payment file in one call."""
        return self._all(EnqueuedItem, "enqueue_batch", items=Jsonb([item.as_json() for item in items]))

    def complete_batch(self, worker_id: str, completions: list[AttemptOutcome]) -> list[BatchCompleted]:
        """complete_outbox_attempts (outbox_executor): one row per completion, completed or stale."""
        return self._all(BatchCompleted, "complete_batch", worker_id=worker_id,
                         outbox_ids=[c.outbox_id for c in completions],
                         attempt_nos=[c.attempt_no for c in completions],
                         states=[c.state for c in completions],
                         error_codes=[c.error_code for c in completions],
                         error_messages=[c.error_message for c in completions],
                         rail_references=[c.rail_reference for c in completions])

    def claim(self, worker_id: str, batch_size: int) -> list[ClaimedItem]:
        """claim_outbox_batch (outbox_executor)."""
        return self._all(ClaimedItem, "claim", worker_id=worker_id, batch_size=batch_size)

    def complete(self, outbox_id: UUID | str, attempt_no: int, state: str, *, error_code: str | None = None,
                 error_message: str | None = None, rail_reference: str | None = None,
                 worker_id: str | None = None) -> Completed:
        """complete_outbox_attempt (outbox_executor); PO002 when the attempt is not the current claim,
        or, with worker_id, not a claim of that worker. Without worker_id, the six-argument call of
        releases before p_worker_id, which every release since accepts too."""
        if worker_id is None:
            return self._one(Completed, "complete_without_worker", outbox_id=outbox_id, attempt_no=attempt_no,
                             state=state, error_code=error_code, error_message=error_message,
                             rail_reference=rail_reference)
        return self._one(Completed, "complete", outbox_id=outbox_id, attempt_no=attempt_no, state=state,
                         error_code=error_code, error_message=error_message, rail_reference=rail_reference,
                         worker_id=worker_id)

    def buckets(self) -> list[Bucket]:
        """On Citus: outbox_buckets() (outbox_executor, outbox_repair, outbox_readonly)."""
        return self._all(Bucket, "buckets")

    def claim_bucket(self, bucket_key: str, worker_id: str, batch_size: int) -> list[ClaimedItem]:
        """On Citus: claim_outbox_bucket (outbox_executor); PO050 for a key that is no bucket's."""
        return self._all(ClaimedItem, "claim_bucket", bucket_key=bucket_key, worker_id=worker_id,
                         batch_size=batch_size)

    def complete_participant(self, participant_id: str, outbox_id: UUID | str, attempt_no: int, state: str, *,
                             worker_id: str, error_code: str | None = None, error_message: str | None = None,
                             rail_reference: str | None = None) -> Completed:
        """On Citus: complete_participant_attempt (outbox_executor), fenced as complete() is."""
        return self._one(Completed, "complete_participant", participant_id=participant_id, outbox_id=outbox_id,
                         attempt_no=attempt_no, state=state, error_code=error_code, error_message=error_message,
                         rail_reference=rail_reference, worker_id=worker_id)

    def repair_bucket(self, bucket_key: str, threshold_seconds: int, batch_size: int = 100) -> list[Repaired]:
        """On Citus: repair_zombie_bucket (outbox_repair), one batch of one bucket."""
        return self._all(Repaired, "repair_bucket", bucket_key=bucket_key, threshold_seconds=threshold_seconds,
                         batch_size=batch_size)

    def check_bucket_invariants(self, bucket_key: str) -> list[Violation]:
        """On Citus: check_bucket_invariants (outbox_readonly, outbox_auditor) for one bucket."""
        return self._all(Violation, "check_bucket_invariants", bucket_key=bucket_key)

    def check_invariants_by_bucket(self) -> list[Violation]:
        """On Citus: check_invariants() as every bucket's check_bucket_invariants, each on its node."""
        return [v for bucket in self.buckets() for v in self.check_bucket_invariants(bucket.bucket_key)]

    def repair(self, threshold_seconds: int, batch_size: int = 100) -> list[Repaired]:
        """repair_zombie_attempts (outbox_repair): one batch."""
        return self._all(Repaired, "repair", threshold_seconds=threshold_seconds, batch_size=batch_size)

    def stuck(self, threshold_seconds: int) -> list[Claim]:
        """list_stuck_dispatching (outbox_repair, outbox_readonly)."""
        return self._all(Claim, "list_stuck", threshold_seconds=threshold_seconds)

    def check_invariants(self) -> list[Violation]:
        """check_invariants (outbox_readonly, outbox_auditor): empty when the outbox is consistent."""
        return self._all(Violation, "check_invariants")

    def queue_metrics(self) -> QueueMetrics:
        """The payment_outbox_queue_metrics view (outbox_readonly, outbox_repair)."""
        return self._one(QueueMetrics, "queue_metrics")

    def in_flight(self) -> list[Claim]:
        """The payment_outbox_in_flight view (outbox_readonly, outbox_repair)."""
        return self._all(Claim, "in_flight")

    def ledger(self, outbox_id: UUID | str | None = None) -> list[LedgerRow]:
        """The ledger rows of one item, or of all (outbox_auditor)."""
        return self._all(LedgerRow, "ledger", outbox_id=outbox_id)

    def set_settings(self, max_attempt_count: int | None = None, *,
                     notify_on_enqueue: bool | None = None) -> Settings:
        """set_outbox_settings (outbox_operator): PO016 when a value is out of its range; None
        leaves a setting as it is."""
        return self._one(Settings, "set_settings", max_attempt_count=max_attempt_count,
                         notify_on_enqueue=notify_on_enqueue)

    def wakeup_channel(self) -> str:
        """wakeup_channel() (outbox_executor): the channel enqueue notifications are sent on."""
        with self.conn.cursor() as cur:
            return str(db.first_row(cur.execute(queries()["wakeup_channel"]))[0])

    def settings_history(self) -> list[SettingChange]:
        """payment_outbox_settings_history (outbox_operator, outbox_auditor), oldest first."""
        return self._all(SettingChange, "settings_history")

    def item_history(self, outbox_id: UUID | str) -> list[HistoryRow]:
        """item_history(uuid) (outbox_readonly, outbox_auditor); PO003 for an unknown item."""
        return self._all(HistoryRow, "item_history", outbox_id=outbox_id)

    def item_history_by_key(self, instruction_id: str, idempotency_key: str) -> list[HistoryRow]:
        """item_history(instruction_id, idempotency_key); PO003 when no item holds the key."""
        return self._all(HistoryRow, "item_history_by_key", instruction_id=instruction_id,
                         idempotency_key=idempotency_key)

    def quarantined(self) -> list[QuarantinedItem]:
        """list_quarantined (outbox_operator, outbox_readonly): oldest quarantine first."""
        return self._all(QuarantinedItem, "quarantine_list")

    def release_quarantined(self, outbox_id: UUID | str, *, reason: str, actor: str) -> Decision:
        """release_quarantined (outbox_operator): due again now, fresh attempt budget; PO030 when the
        item is not quarantined, PO003 when unknown, PO010/PO015 for a bad reason or actor."""
        return self._one(Decision, "quarantine_release", outbox_id=outbox_id, reason=reason, actor=actor)

    def fail_quarantined(self, outbox_id: UUID | str, *, reason: str, actor: str) -> Decision:
        """fail_quarantined (outbox_operator): FAILED, terminal; the same refusals as the release."""
        return self._one(Decision, "quarantine_fail", outbox_id=outbox_id, reason=reason, actor=actor)

    def key_conflicts(self) -> list[KeyConflict]:
        """payment_outbox_key_conflicts (outbox_auditor): empty unless an upgrade across
        tables/0006 under load left a key held by two items."""
        return self._all(KeyConflict, "key_conflicts")

    def ensure_partitions(self, ahead: str) -> list[PartitionCreated]:
        """ensure_attempt_partitions (outbox_operator): the months up to `ahead` ahead that were missing."""
        return self._all(PartitionCreated, "ensure_partitions", ahead=ahead)

    def retention_plan(self, window: str) -> list[RetentionVerdict]:
        """attempt_partition_retention (outbox_operator): PO031 for a window under a day."""
        return self._all(RetentionVerdict, "retention_plan", retention_window=window)

    def begin_retirement(self, partition_name: str) -> RetirementBegun:
        """_begin_partition_retirement (the owner): PO033 when an item of the partition is unfinished."""
        return self._one(RetirementBegun, "begin_retirement", partition_name=partition_name)

    def retire_partition(self, partition_name: str, exported_to: str | None) -> None:
        """_retire_partition (the owner): drops the detached partition, records it retired."""
        self._one(Retired, "retire_partition", partition_name=partition_name, exported_to=exported_to)

    def attempt_partitions(self) -> list[AttemptPartition]:
        """payment_outbox_attempt_partitions (outbox_operator, outbox_auditor)."""
        return self._all(AttemptPartition, "attempt_partitions")

    def pause_rail(self, rail_type: str, reason: str, actor: str) -> RailChange:
        """pause_rail (outbox_operator): idempotent; PO010/PO015 for a bad argument."""
        return self._one(RailChange, "pause_rail", rail_type=rail_type, reason=reason, actor=actor)

    def resume_rail(self, rail_type: str, actor: str) -> RailChange:
        """resume_rail (outbox_operator): idempotent; PO010/PO015 for a bad argument."""
        return self._one(RailChange, "resume_rail", rail_type=rail_type, actor=actor)

    def paused_rails(self) -> list[PausedRail]:
        """payment_outbox_paused_rails (outbox_readonly, outbox_repair, outbox_operator)."""
        return self._all(PausedRail, "paused_rails")

    def rail_history(self) -> list[RailHistoryRow]:
        """payment_outbox_rail_history (outbox_operator, outbox_auditor), oldest first."""
        return self._all(RailHistoryRow, "rail_history")

    def _one(self, row_type: type[Any], name: str, **params: Any) -> Any:
        with self.conn.cursor(row_factory=class_row(row_type)) as cur:
            return cur.execute(queries()[name], params, prepare=self.prepare).fetchone()

    def _all(self, row_type: type[Any], name: str, **params: Any) -> list[Any]:
        with self.conn.cursor(row_factory=class_row(row_type)) as cur:
            return cur.execute(queries()[name], params, prepare=self.prepare).fetchall()
