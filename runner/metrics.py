"""Repair and queue metrics in Prometheus form: the registry, how it is filled, how it is shown."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

from runner import db

# Names shared with deploy/postgres_exporter/queries.yaml: its namespace `payment_outbox` plus
# each column gives the same metric name, so dashboards work with either source.
QUEUE_GAUGES = {
    "queue_depth": "Outbox items not yet terminal (rows of payment_outbox_pending).",
    "due_now": "Items due now and not in flight.",
    "in_flight": "Items claimed by a worker and not yet completed.",
    "oldest_due_age_seconds": "Seconds the oldest due item has waited (0 when none is due).",
    "stuck_dispatching": "In-flight items whose claim is older than the zombie threshold "
                         "(list_stuck_dispatching).",
}
NAMESPACE = "payment_outbox"


@dataclass(frozen=True)
class QueueGauges:
    queue_depth: int
    due_now: int
    in_flight: int
    oldest_due_age_seconds: float
    stuck_dispatching: int


def read_queue_gauges(conn: psycopg.Connection, threshold_seconds: int) -> QueueGauges:
    """One consistent read of the queue gauges; needs outbox_readonly or outbox_repair."""
    row = db.first_row(conn.execute(db.named_sql("queue_gauges"), {"threshold_seconds": threshold_seconds}))
    depth, due, in_flight, oldest, stuck = row
    return QueueGauges(queue_depth=depth, due_now=due, in_flight=in_flight, oldest_due_age_seconds=float(oldest),
                       stuck_dispatching=stuck)


class RepairMetrics:
    """The counters of one `outbox` process and the latest queue gauges, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.zombies_requeued = Counter(
            "zombies_requeued", "Zombie claims requeued (ZOMBIE_REQUEUE) since this process started.",
            namespace=NAMESPACE, registry=self.registry)
        self.zombies_failed = Counter(
            "zombies_failed", "Zombie claims recorded as FAILED at the maximum attempt count since this "
            "process started.", namespace=NAMESPACE, registry=self.registry)
        self.zombies_requeued_last_cycle = Gauge(
            "zombies_requeued_last_cycle", "Zombie claims requeued by the latest repair cycle.",
            namespace=NAMESPACE, registry=self.registry)
        self.repair_cycles = Counter(
            "repair_cycles", "Repair cycles completed since this process started.",
            namespace=NAMESPACE, registry=self.registry)
        self.repair_cycle_duration = Gauge(
            "repair_last_cycle_duration_seconds", "Duration of the latest repair cycle.",
            namespace=NAMESPACE, registry=self.registry)
        self.threshold = Gauge(
            "repair_threshold_seconds", "Zombie threshold of the latest cycle or read.",
            namespace=NAMESPACE, registry=self.registry)
        self.queue = {name: Gauge(name, text, namespace=NAMESPACE, registry=self.registry)
                      for name, text in QUEUE_GAUGES.items()}

    def record_cycle(self, *, requeued: int, failed: int, duration_seconds: float) -> None:
        self.zombies_requeued.inc(requeued)
        self.zombies_failed.inc(failed)
        self.zombies_requeued_last_cycle.set(requeued)
        self.repair_cycles.inc()
        self.repair_cycle_duration.set(duration_seconds)

    def record_gauges(self, gauges: QueueGauges, threshold_seconds: int) -> None:
        self.threshold.set(threshold_seconds)
        for name, gauge in self.queue.items():
            gauge.set(getattr(gauges, name))

    def exposition(self) -> str:
        """The registry in Prometheus text exposition format."""
        return generate_latest(self.registry).decode()

    def serve(self, port: int, addr: str) -> int:
        """Serves /metrics from a daemon thread; returns the port bound (useful with port 0)."""
        server, _ = start_http_server(port, addr=addr, registry=self.registry)
        return server.server_port


# Rail calls take milliseconds to tens of seconds; the buckets span both.
DISPATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class WorkerMetrics:
    """The counters of one `outbox worker` process, shared by its worker threads."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.claimed = Counter(
            "worker_claimed", "Items claimed by this process.", namespace=NAMESPACE, registry=self.registry)
        self.completed = Counter(
            "worker_completed", "Completions recorded by this process, by the state the ledger recorded "
            "(DISPATCHED, RETRYABLE, FAILED).", ["outcome"], namespace=NAMESPACE, registry=self.registry)
        self.stale = Counter(
            "worker_stale", "Completions refused as stale (PO002): the claim had been repaired or completed "
            "meanwhile.", namespace=NAMESPACE, registry=self.registry)
        self.dispatch_latency = Histogram(
            "worker_dispatch_latency_seconds", "Seconds the rail took per dispatch.", namespace=NAMESPACE,
            registry=self.registry, buckets=DISPATCH_BUCKETS)
        for outcome in ("DISPATCHED", "RETRYABLE", "FAILED"):
            self.completed.labels(outcome=outcome)

    def record_completion(self, state: str) -> None:
        if state == "STALE":
            self.stale.inc()
        else:
            self.completed.labels(outcome=state).inc()

    def exposition(self) -> str:
        return generate_latest(self.registry).decode()

    def serve(self, port: int, addr: str) -> int:
        """Serves /metrics from a daemon thread; returns the port bound (useful with port 0)."""
        server, _ = start_http_server(port, addr=addr, registry=self.registry)
        return server.server_port
