"""`outbox repair`: repair cycles, their JSON log lines, and the loop that runs them until a signal."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from runner import db
from runner.client import Client, Role
from runner.operator import threshold
from runner.operator.metrics import QueueGauges, RepairMetrics, read_queue_gauges
from runner.process import StopOnSignal, emit_json

DEFAULT_BATCH_SIZE = 100
Emit = Callable[[dict[str, Any]], None]
# The log event of each state repair records. FAILED is no longer one of them (tables/0013): a
# zombie at the maximum attempt count is QUARANTINED; zombie_failed stays for an older package.
ZOMBIE_EVENTS = {"ZOMBIE_REQUEUE": "zombie_requeued", "QUARANTINED": "zombie_quarantined"}


@dataclass
class CycleResult:
    threshold_seconds: int
    items: list[dict[str, Any]] = field(default_factory=list)
    gauges: QueueGauges | None = None
    duration_seconds: float = 0.0

    @property
    def requeued(self) -> int:
        return sum(1 for item in self.items if item["new_state"] == "ZOMBIE_REQUEUE")

    @property
    def failed(self) -> int:
        return sum(1 for item in self.items if item["new_state"] == "FAILED")

    @property
    def quarantined(self) -> int:
        return sum(1 for item in self.items if item["new_state"] == "QUARANTINED")


def run_cycle(conn: psycopg.Connection, threshold_seconds: int, *, emit: Emit,
              batch_size: int = DEFAULT_BATCH_SIZE, cycle: int = 1,
              metrics: RepairMetrics | None = None) -> CycleResult:
    """One repair cycle on an autocommit connection acting as outbox_repair: batches until a short
    one, each committed before its items are logged, then the gauges as they are afterwards. The
    metrics, when given, hold the cycle before its repair_cycle line is written, so a scrape that
    follows the line sees the cycle counted."""
    started = time.monotonic()
    result = CycleResult(threshold_seconds=threshold_seconds)
    while True:
        rows = Client(conn).repair(threshold_seconds, batch_size)
        for row in rows:
            item = {"event": ZOMBIE_EVENTS.get(row.new_state, "zombie_failed"),
                    "cycle": cycle, "outbox_id": str(row.outbox_id), "attempt_no": row.attempt_no,
                    "previous_state": row.previous_state, "new_state": row.new_state,
                    "threshold_seconds": threshold_seconds, "stale_seconds": float(row.stale_seconds),
                    "worker_id": row.worker_id}
            result.items.append(item)
            emit(item)
        if len(rows) < batch_size:
            break
    gauges = read_queue_gauges(conn, threshold_seconds)
    result.gauges = gauges
    result.duration_seconds = round(time.monotonic() - started, 3)
    if metrics is not None:
        metrics.record_cycle(requeued=result.requeued, failed=result.failed, quarantined=result.quarantined,
                             duration_seconds=result.duration_seconds)
        metrics.record_gauges(gauges, threshold_seconds)
    emit({"event": "repair_cycle", "cycle": cycle, "threshold_seconds": threshold_seconds,
          "zombies_requeued": result.requeued, "zombies_failed": result.failed,
          "zombies_quarantined": result.quarantined,
          "stuck_dispatching": gauges.stuck_dispatching, "duration_seconds": result.duration_seconds})
    return result


@dataclass
class Options:
    threshold_override: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    loop: bool = False
    interval_seconds: float = 30.0
    metrics_port: int | None = None
    metrics_addr: str = "0.0.0.0"


def run(url: str, options: Options, *, emit: Emit = emit_json) -> int:
    """One cycle, or cycles every interval until SIGTERM/SIGINT; exit code 0, 1 (database), 2 (setting)."""
    stop = StopOnSignal() if options.loop else None
    metrics = RepairMetrics()
    cycle = 0
    try:
        if options.metrics_port is not None:
            port = metrics.serve(options.metrics_port, options.metrics_addr)
            emit({"event": "metrics_serving", "addr": options.metrics_addr, "port": port})
        while True:
            cycle += 1
            # Read at the start of every cycle, so a changed environment takes effect on the next one.
            seconds = threshold.resolve(options.threshold_override)
            with Client.connect(url, Role.REPAIR, name="outbox repair") as client:
                run_cycle(client.conn, seconds, emit=emit, batch_size=options.batch_size, cycle=cycle,
                          metrics=metrics)
            if stop is None or stop.wait(options.interval_seconds):
                break
    except threshold.ThresholdError as exc:
        emit({"event": "repair_failed", "cycle": cycle, "sqlstate": None, "error": str(exc)})
        return 2
    except psycopg.Error as exc:
        emit({"event": "repair_failed", "cycle": cycle, "sqlstate": db.sqlstate(exc),
              "error": str(exc).strip()})
        return 1
    except OSError as exc:  # the metrics port: busy, or not ours to bind
        emit({"event": "repair_failed", "cycle": cycle, "sqlstate": None,
              "error": f"cannot serve metrics on {options.metrics_addr}:{options.metrics_port}: {exc}"})
        return 2
    finally:
        if stop is not None:
            stop.restore()
    if stop is not None:
        emit({"event": "repair_stopped", "cycles": cycle, "signal": stop.received})
    return 0
