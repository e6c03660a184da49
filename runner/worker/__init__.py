"""The worker: the reference Worker (claim, call a rail, complete), the `outbox worker` process
that runs it on threads, and the LISTEN wake-up. `from runner.worker import Worker, RailOutcome`
is the public import a rail author writes."""

from runner.client import ClaimedItem
from runner.worker.reference import Rail, RailError, RailOutcome, Worker

__all__ = ["ClaimedItem", "Rail", "RailError", "RailOutcome", "Worker"]
