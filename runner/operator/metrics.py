"""Repair, queue and growth metrics in Prometheus form: the registry, how it is filled, how it is shown."""

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
    "queue_dead_tuples": "Dead row versions in the hot queue (payment_outbox_pending) not yet vacuumed: "
                         "claims walk past them until vacuum removes them.",
    "quarantined": "Items QUARANTINED (retries exhausted, or a zombie at the maximum attempt count) waiting "
                   "for an operator (outbox quarantine list): never claimed until released or failed.",
    "paused_rails": "Rails paused now (pause_rail); the view payment_outbox_paused_rails names them.",
    "paused_due": "Due items of paused rails, not claimed until their rail is resumed (counted in due_now too).",
    "ledger_partitions_ahead_seconds": "Seconds until the ledger's attached partitions end (NaN before the ledger "
                                       "is partitioned): from then no item can be created (PO035). Alert below "
                                       "2,592,000 (a month).",
    "notification_queue_usage": "Fraction (0 to 1) of the server's notification queue in use: a listener idle in "
                                "a transaction fills it, and a full queue fails every NOTIFY (every enqueue "
                                "while wake-up is on). Alert above 0.5.",
}
# Labelled growth gauges (table_name, partition_name), from the view payment_outbox_relation_sizes.
RELATION_GAUGES = {
    "relation_total_bytes": "Bytes on disk of one leaf table (partition) of a package table, indexes and "
                            "TOAST included.",
    "relation_live_rows": "Live rows of one leaf table (partition), the statistics collector's estimate.",
    "relation_dead_rows": "Dead row versions of one leaf table (partition) not yet vacuumed.",
}
# Labelled vacuum-horizon gauges (horizon_source: session, prepared_transaction, replication_slot), from
# the function vacuum_horizon().
HORIZON_GAUGES = {
    "vacuum_horizon_xmin_age": "Age in transactions of the oldest horizon of this source holding back "
                               "vacuum (0: none).",
    "vacuum_horizon_age_seconds": "Seconds since the transaction holding the oldest horizon of this source "
                                  "began (0: none or unknown, as for replication slots).",
    "vacuum_horizon_complete": "1 when every holder of this source is visible to the package's owner, 0 "
                               "when other roles' sessions are hidden from it (not a superuser nor a member "
                               "of pg_read_all_stats).",
}
NAMESPACE = "payment_outbox"


@dataclass(frozen=True)
class QueueGauges:
    queue_depth: int
    due_now: int
    in_flight: int
    oldest_due_age_seconds: float
    stuck_dispatching: int
    queue_dead_tuples: int
    quarantined: int
    paused_rails: int
    paused_due: int
    ledger_partitions_ahead_seconds: float
    notification_queue_usage: float


@dataclass(frozen=True)
class RelationSize:
    table_name: str
    partition_name: str
    total_bytes: int
    live_rows: int
    dead_rows: int


@dataclass(frozen=True)
class VacuumHorizon:
    horizon_source: str
    holder: str | None
    complete: bool
    xmin_age: int
    age_seconds: float


@dataclass(frozen=True)
class Growth:
    relations: list[RelationSize]
    horizons: list[VacuumHorizon]


def read_growth(conn: psycopg.Connection) -> Growth:
    """Sizes per partition and the vacuum horizon; needs outbox_readonly or outbox_repair."""
    relations = [RelationSize(*row) for row in conn.execute(db.named_sql("relation_sizes"))]
    horizons = [VacuumHorizon(source, holder, complete, age, float(seconds))
                for source, holder, complete, age, seconds in conn.execute(db.named_sql("vacuum_horizon"))]
    return Growth(relations=relations, horizons=horizons)


def read_queue_gauges(conn: psycopg.Connection, threshold_seconds: int) -> QueueGauges:
    """One consistent read of the queue gauges; needs outbox_readonly or outbox_repair."""
    row = db.first_row(conn.execute(db.named_sql("queue_gauges"), {"threshold_seconds": threshold_seconds}))
    depth, due, in_flight, oldest, stuck, dead, quarantined, paused_rails, paused_due, ahead, notify = row
    return QueueGauges(queue_depth=depth, due_now=due, in_flight=in_flight, oldest_due_age_seconds=float(oldest),
                       stuck_dispatching=stuck, queue_dead_tuples=int(dead), quarantined=quarantined,
                       paused_rails=paused_rails, paused_due=paused_due,
                       ledger_partitions_ahead_seconds=float("nan") if ahead is None else float(ahead),
                       notification_queue_usage=float(notify))


class RepairMetrics:
    """The counters of one `outbox` process and the latest queue gauges, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.zombies_requeued = Counter(
            "zombies_requeued", "Zombie claims requeued (ZOMBIE_REQUEUE) since this process started.",
            namespace=NAMESPACE, registry=self.registry)
        self.zombies_failed = Counter(
            "zombies_failed", "Zombie claims recorded as FAILED since this process started: always 0 since "
            "tables/0013 (a zombie at the maximum attempt count is quarantined); kept for dashboards.",
            namespace=NAMESPACE, registry=self.registry)
        self.zombies_quarantined = Counter(
            "zombies_quarantined", "Zombie claims QUARANTINED at the maximum attempt count (outcome unknown, "
            "waiting for an operator) since this process started.", namespace=NAMESPACE, registry=self.registry)
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
        self.relation = {name: Gauge(name, text, ["table_name", "partition_name"], namespace=NAMESPACE,
                                     registry=self.registry)
                         for name, text in RELATION_GAUGES.items()}
        self.horizon = {name: Gauge(name, text, ["horizon_source"], namespace=NAMESPACE, registry=self.registry)
                        for name, text in HORIZON_GAUGES.items()}

    def record_cycle(self, *, requeued: int, failed: int, duration_seconds: float, quarantined: int = 0) -> None:
        self.zombies_requeued.inc(requeued)
        self.zombies_failed.inc(failed)
        self.zombies_quarantined.inc(quarantined)
        self.zombies_requeued_last_cycle.set(requeued)
        self.repair_cycles.inc()
        self.repair_cycle_duration.set(duration_seconds)

    def record_gauges(self, gauges: QueueGauges, threshold_seconds: int) -> None:
        self.threshold.set(threshold_seconds)
        for name, gauge in self.queue.items():
            gauge.set(getattr(gauges, name))

    def record_growth(self, growth: Growth) -> None:
        for relation in growth.relations:
            labels = (relation.table_name, relation.partition_name)
            self.relation["relation_total_bytes"].labels(*labels).set(relation.total_bytes)
            self.relation["relation_live_rows"].labels(*labels).set(relation.live_rows)
            self.relation["relation_dead_rows"].labels(*labels).set(relation.dead_rows)
        for horizon in growth.horizons:
            self.horizon["vacuum_horizon_xmin_age"].labels(horizon.horizon_source).set(horizon.xmin_age)
            self.horizon["vacuum_horizon_age_seconds"].labels(horizon.horizon_source).set(horizon.age_seconds)
            self.horizon["vacuum_horizon_complete"].labels(horizon.horizon_source).set(int(horizon.complete))

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
            "(DISPATCHED, RETRYABLE, FAILED, QUARANTINED).", ["outcome"], namespace=NAMESPACE, registry=self.registry)
        self.stale = Counter(
            "worker_stale", "Completions refused as stale (PO002): the claim had been repaired or completed "
            "meanwhile.", namespace=NAMESPACE, registry=self.registry)
        self.dispatch_latency = Histogram(
            "worker_dispatch_latency_seconds", "Seconds the rail took per dispatch.", namespace=NAMESPACE,
            registry=self.registry, buckets=DISPATCH_BUCKETS)
        for outcome in ("DISPATCHED", "RETRYABLE", "FAILED", "QUARANTINED"):
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
