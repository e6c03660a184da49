"""A payment rail for tests: records every call (thread-safe) and answers as it is told."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from runner.worker import ClaimedItem, RailOutcome


@dataclass(frozen=True)
class RailCall:
    outbox_id: str
    attempt_no: int
    idempotency_key: str
    worker_attempt_count: int


def always_dispatched(item: ClaimedItem) -> RailOutcome:
    return RailOutcome("DISPATCHED", rail_reference=f"fake-{item.idempotency_key}-{item.attempt_no}")


@dataclass
class FakeRail:
    """`decide` gives the outcome of each call; `on_call` runs first, inside the call (a fault to
    inject between claim and completion, say). Every call is recorded before either runs."""

    decide: Callable[[ClaimedItem], RailOutcome] = always_dispatched
    on_call: Callable[[ClaimedItem], None] | None = None
    calls: list[RailCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, item: ClaimedItem) -> RailOutcome:
        with self._lock:
            self.calls.append(RailCall(str(item.outbox_id), item.attempt_no, item.idempotency_key, item.attempt_count))
        if self.on_call is not None:
            self.on_call(item)
        return self.decide(item)

    def calls_per_key(self) -> Counter[str]:
        with self._lock:
            return Counter(call.idempotency_key for call in self.calls)
