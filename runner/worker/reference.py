"""The reference worker: claim a batch, hand each item to a rail, record each outcome.

A rail is any callable that takes a ClaimedItem and returns a RailOutcome (or raises). The worker
gives an item to the rail at least once: a worker that dies after the rail call and before its
completion leaves a DISPATCHING claim, repair requeues it, and the next claim calls the rail again
with the same idempotency_key. The rail must therefore treat the idempotency_key as its own
deduplication key; the ledger still ends with exactly one terminal attempt per item, because a
completion is fenced by its attempt_no and this worker's id (a stale one, or one of another worker,
raises PO002 and writes nothing).

The worker connects as the login of the URL and acts as `outbox_executor` for the whole life of
the connection; it runs in autocommit, so a claim is committed before the rail is called and a
completion is committed when `complete` (one item) or `complete_all` (the batch `run_once` claimed,
in one call of complete_outbox_attempts) returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from runner import db
from runner.client import AttemptOutcome, ClaimedItem, Client, Role

OUTCOMES = ("DISPATCHED", "RETRYABLE", "FAILED")
STALE_ATTEMPT = "PO002"
# The API's limits on the diagnostics a completion carries (docs/api.md): a longer one would be
# refused with PO015 and leave the claim to repair, so the worker cuts them to size.
ERROR_CODE_LIMIT = 64
ERROR_MESSAGE_LIMIT = 4096
# A rail's reference is the proof that a payment went out: never the reason its completion is
# refused (the payment would be sent again after repair). One longer than the column is stored cut,
# ending with this marker, and logged whole (the rail_reference_cut line).
RAIL_REFERENCE_LIMIT = 255
CUT_MARKER = "...[cut]"
# A completion the server refused for its arguments (not for the item's state, PO002): the
# package's own codes, data exceptions (22) and integrity violations (23). The worker then records
# the batch's other outcomes item by item, and logs the refused one whole (completion_refused).
REFUSAL_CLASSES = ("PO", "22", "23")
ITEM_STATE_CODES = (STALE_ATTEMPT, "PO003")  # the claim is stale, or the item unknown: about the item, not the outcome


@dataclass(frozen=True)
class RailOutcome:
    """What the rail made of one dispatch."""

    state: str  # DISPATCHED, RETRYABLE or FAILED
    rail_reference: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    def __post_init__(self) -> None:
        if self.state not in OUTCOMES:
            raise ValueError(f"a rail outcome is one of {', '.join(OUTCOMES)}, got {self.state!r}")


class RailError(Exception):
    """Raised by a rail that knows the payment did not go out: retryable or not."""

    def __init__(self, message: str, *, code: str = "RAIL_ERROR", retryable: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


Rail = Callable[[ClaimedItem], RailOutcome]


@dataclass(frozen=True)
class Completion:
    """The end of one claim: the ledger row the completion wrote, or STALE when it was refused."""

    item: ClaimedItem
    # DISPATCHED, RETRYABLE, FAILED, QUARANTINED (RETRYABLE at the limit): the ledger's; or STALE, or REFUSED
    state: str
    attempt_no: int | None  # the attempt_no of the ledger row written; None when STALE


class Worker:
    """One worker on one connection acting as outbox_executor."""

    def __init__(self, conn: psycopg.Connection, worker_id: str, say: Callable[[str], None] | None = None, *,
                 fenced_by_worker_id: bool = True) -> None:
        """fenced_by_worker_id=False completes with the six-argument call of releases before
        p_worker_id (fenced by attempt_no alone): a worker of such a release, as the upgrade proofs
        run one against a database not yet migrated."""
        self.conn = conn
        self.client = Client(conn)
        self.worker_id = worker_id
        self.fenced_by_worker_id = fenced_by_worker_id
        self._say = say

    @classmethod
    @contextmanager
    def connected(cls, url: str | None, worker_id: str, say: Callable[[str], None] | None = None, *,
                  fenced_by_worker_id: bool = True) -> Iterator[Worker]:
        with Client.connect(url, Role.EXECUTOR, name=f"outbox worker {worker_id}") as client:
            yield cls(client.conn, worker_id, say, fenced_by_worker_id=fenced_by_worker_id)

    @property
    def backend_pid(self) -> int:
        return self.conn.info.backend_pid

    def claim(self, batch_size: int) -> list[ClaimedItem]:
        items = self.client.claim(self.worker_id, batch_size)
        if items:
            self._log("claimed", count=len(items))
        return items

    def dispatch(self, item: ClaimedItem, rail: Rail) -> RailOutcome:
        """The rail's outcome. A RailError says what happened; any other exception leaves it open
        whether the payment went out, so the item is retried under the same idempotency key."""
        try:
            return rail(item)
        except RailError as exc:
            return RailOutcome("RETRYABLE" if exc.retryable else "FAILED", error_code=exc.code[:ERROR_CODE_LIMIT],
                               error_message=str(exc)[:ERROR_MESSAGE_LIMIT])
        except Exception as exc:  # noqa: BLE001 - the rail is foreign code; its failure must not lose the claim
            return RailOutcome("RETRYABLE", error_code=type(exc).__name__[:ERROR_CODE_LIMIT],
                               error_message=str(exc)[:500])

    def fit(self, item: ClaimedItem, outcome: RailOutcome) -> RailOutcome:
        """The outcome with a rail reference the ledger takes: a longer one is cut (with
        CUT_MARKER) and logged whole."""
        reference = outcome.rail_reference
        if reference is None or len(reference) <= RAIL_REFERENCE_LIMIT:
            return outcome
        self._log("rail_reference_cut", outbox_id=str(item.outbox_id), attempt_no=item.attempt_no,
                  length=len(reference), rail_reference=reference)
        cut = reference[:RAIL_REFERENCE_LIMIT - len(CUT_MARKER)] + CUT_MARKER
        return RailOutcome(outcome.state, cut, outcome.error_code, outcome.error_message)

    def complete(self, item: ClaimedItem, outcome: RailOutcome) -> Completion:
        """Record the outcome. PO002 (the claim was repaired or completed meanwhile) is a normal
        end, STALE; a refusal of the outcome's arguments is REFUSED, logged whole (the claim is left
        to repair); any other error is raised: on a lost connection the completion may or may not
        have committed, and repair or a retry of the same attempt_no (PO002 then) settles it."""
        outcome = self.fit(item, outcome)
        try:
            completed = self.client.complete(
                item.outbox_id, item.attempt_no, outcome.state,
                error_code=outcome.error_code and outcome.error_code[:ERROR_CODE_LIMIT],
                error_message=outcome.error_message and outcome.error_message[:ERROR_MESSAGE_LIMIT],
                rail_reference=outcome.rail_reference,
                worker_id=self.worker_id if self.fenced_by_worker_id else None)
        except psycopg.Error as exc:
            if _refused(exc):
                self._refused(item, outcome, exc)
                return Completion(item=item, state="REFUSED", attempt_no=None)
            if db.sqlstate(exc) != STALE_ATTEMPT:
                self._log("completion_error", outbox_id=str(item.outbox_id), attempt_no=item.attempt_no,
                          sqlstate=db.sqlstate(exc), error=str(exc).splitlines()[0] if str(exc) else "")
                raise
            self._log("stale_attempt", outbox_id=str(item.outbox_id), attempt_no=item.attempt_no,
                      sqlstate=STALE_ATTEMPT)
            return Completion(item=item, state="STALE", attempt_no=None)
        self._log("completed", outbox_id=str(item.outbox_id), attempt_no=completed.attempt_no,
                  state=completed.state)
        return Completion(item=item, state=completed.state, attempt_no=completed.attempt_no)

    def complete_all(self, done: list[tuple[ClaimedItem, RailOutcome]]) -> list[Completion]:
        """Record every outcome of a batch in one call (complete_outbox_attempts), fenced item by
        item by attempt_no and this worker's id: a stale one (repaired or completed meanwhile) is
        STALE and changes nothing. A refusal of the call's arguments fails the whole call, which
        then recorded nothing: the outcomes are then recorded item by item, so one refused outcome
        (REFUSED) never loses the others. Any other error is raised."""
        if not done:
            return []
        done = [(item, self.fit(item, outcome)) for item, outcome in done]
        try:
            rows = self.client.complete_batch(self.worker_id, [
                AttemptOutcome(item.outbox_id, item.attempt_no, outcome.state,
                               error_code=outcome.error_code and outcome.error_code[:ERROR_CODE_LIMIT],
                               error_message=outcome.error_message and outcome.error_message[:ERROR_MESSAGE_LIMIT],
                               rail_reference=outcome.rail_reference)
                for item, outcome in done])
        except psycopg.Error as exc:
            self._log("completion_error", count=len(done), sqlstate=db.sqlstate(exc),
                      error=str(exc).splitlines()[0] if str(exc) else "")
            if not _refused(exc):
                raise
            return [self.complete(item, outcome) for item, outcome in done]
        found: list[Completion] = []
        for (item, _), row in zip(done, rows, strict=True):
            if row.outcome == "stale":
                self._log("stale_attempt", outbox_id=str(item.outbox_id), attempt_no=item.attempt_no,
                          sqlstate=STALE_ATTEMPT)
                found.append(Completion(item=item, state="STALE", attempt_no=None))
            else:
                self._log("completed", outbox_id=str(item.outbox_id), attempt_no=row.attempt_no, state=row.state)
                found.append(Completion(item=item, state=str(row.state), attempt_no=row.attempt_no))
        return found

    def run_once(self, rail: Rail, batch_size: int = 10) -> list[Completion]:
        """One cycle: claim up to batch_size items, dispatch each in claim order, then complete
        them all with one call."""
        return self.complete_all([(item, self.dispatch(item, rail)) for item in self.claim(batch_size)])

    def _refused(self, item: ClaimedItem, outcome: RailOutcome, exc: psycopg.Error) -> None:
        self._log("completion_refused", outbox_id=str(item.outbox_id), attempt_no=item.attempt_no,
                  sqlstate=db.sqlstate(exc), error=str(exc).splitlines()[0] if str(exc) else "",
                  state=outcome.state, rail_reference=outcome.rail_reference, error_code=outcome.error_code,
                  error_message=outcome.error_message)

    def _log(self, event: str, **fields: Any) -> None:
        if self._say is not None:
            self._say(json.dumps({"event": event, "worker_id": self.worker_id, **fields}, sort_keys=True))


def _refused(exc: psycopg.Error) -> bool:
    """The server refused the completion's arguments (the connection and the claim are fine)."""
    sqlstate = db.sqlstate(exc) or ""
    return sqlstate.startswith(REFUSAL_CLASSES) and sqlstate not in ITEM_STATE_CODES
