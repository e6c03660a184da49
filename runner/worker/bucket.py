"""On Citus: the reference worker claiming bucket by bucket.

A distributed outbox cannot claim with one SKIP LOCKED over every shard (Citus refuses it), so
a worker process is given buckets (payment_outbox.outbox_buckets(): one per shard) and claims
from one bucket per call, taking them in turn: each call starts at the bucket after the one the
previous call claimed from and moves on past empty ones, so a bucket holding most of the load
gets one call in each round like every other and never keeps them waiting. Completion goes to
the item's participant (complete_participant_attempt), delegated to the node holding it; the
fencing, the rail contract and the log lines are the reference worker's (runner/worker/reference.py).

The worker logs in as a login role that is a member of outbox_executor and acts as itself, with
no SET ROLE: Citus opens its connection to the worker node as the current role, and a runtime
role has no LOGIN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg

from runner import db
from runner.client import ClaimedItem, Client
from runner.worker.reference import (
    ERROR_CODE_LIMIT,
    ERROR_MESSAGE_LIMIT,
    STALE_ATTEMPT,
    Completion,
    RailOutcome,
    Worker,
)


class BucketWorker(Worker):
    """A worker over the buckets whose keys it is given (all of them when none are)."""

    def __init__(self, conn: psycopg.Connection, worker_id: str, bucket_keys: Sequence[str] | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        super().__init__(conn, worker_id, say)
        keys = list(bucket_keys) if bucket_keys is not None else [b.bucket_key for b in self.client.buckets()]
        if not keys:
            raise ValueError("a bucket worker needs at least one bucket (outbox_buckets() is empty: "
                             "run outbox migrate --citus)")
        self.bucket_keys = keys
        self._next = 0
        self.last_bucket: str | None = None

    @classmethod
    @contextmanager
    def connected_to(cls, url: str, worker_id: str, bucket_keys: Sequence[str] | None = None,
                     say: Callable[[str], None] | None = None) -> Iterator[BucketWorker]:
        with Client.connect(url, None, name=f"outbox worker {worker_id}") as client:
            yield cls(client.conn, worker_id, bucket_keys, say)

    def claim(self, batch_size: int) -> list[ClaimedItem]:
        """Up to batch_size items of one bucket: the first, from the next bucket in turn, that has any."""
        for _ in range(len(self.bucket_keys)):
            key = self.bucket_keys[self._next]
            self._next = (self._next + 1) % len(self.bucket_keys)
            items = self.client.claim_bucket(key, self.worker_id, batch_size)
            if items:
                self.last_bucket = key
                self._log("claimed", count=len(items), bucket_key=key)
                return items
        self.last_bucket = None
        return []

    def complete(self, item: ClaimedItem, outcome: RailOutcome) -> Completion:
        try:
            completed = self.client.complete_participant(
                item.participant_id, item.outbox_id, item.attempt_no, outcome.state, worker_id=self.worker_id,
                error_code=outcome.error_code and outcome.error_code[:ERROR_CODE_LIMIT],
                error_message=outcome.error_message and outcome.error_message[:ERROR_MESSAGE_LIMIT],
                rail_reference=outcome.rail_reference)
        except psycopg.Error as exc:
            if db.sqlstate(exc) != STALE_ATTEMPT:
                raise
            self._log("stale_attempt", outbox_id=str(item.outbox_id), attempt_no=item.attempt_no,
                      sqlstate=STALE_ATTEMPT)
            return Completion(item=item, state="STALE", attempt_no=None)
        self._log("completed", outbox_id=str(item.outbox_id), attempt_no=completed.attempt_no,
                  state=completed.state)
        return Completion(item=item, state=completed.state, attempt_no=completed.attempt_no)

    def complete_all(self, done: list[tuple[ClaimedItem, RailOutcome]]) -> list[Completion]:
        """One call per item: a batch spans participants, so nodes (complete_outbox_attempts is not
        distributed)."""
        return [self.complete(item, outcome) for item, outcome in done]
