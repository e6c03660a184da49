"""`outbox worker`: the reference Worker as a process: worker threads claiming, dispatching to a
rail and completing until SIGTERM or SIGINT, then draining.

Drain: a signal stops the claiming. Every item already claimed is dispatched and completed (the
batch a thread holds is finished), so a clean stop leaves nothing in flight; the process then
exits 0. Killed harder than that (SIGKILL, a lost connection), the claims it held stay DISPATCHING
and repair requeues them after the zombie threshold: never lost, and the rail sees the same
idempotency key again.

Waiting: a thread whose claim found nothing waits its poll interval. With --listen (runner/worker/wakeup.py)
the process also keeps one LISTEN connection, and an enqueue notification ends the wait at once;
without notifications (the operator setting off, PgBouncer in transaction pooling, the listen
connection down) it is the same polling as without --listen.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import psycopg

from runner import db
from runner.client import Client
from runner.operator.metrics import WorkerMetrics
from runner.process import StopOnSignal, emit_json
from runner.worker import Rail, Worker, wakeup
from runner.worker.bucket import BucketWorker

Emit = Callable[[dict[str, Any]], None]
RECONNECT_SECONDS = 1.0


class RailSpecError(Exception):
    """--rail does not name an importable callable."""


@dataclass(frozen=True)
class Options:
    rail: str  # module:callable
    batch_size: int = 10
    concurrency: int = 1
    poll_interval_seconds: float = 1.0
    metrics_port: int | None = None
    metrics_addr: str = "0.0.0.0"
    worker_id: str | None = None
    listen: bool = False  # a LISTEN connection ends waits at an enqueue notification (runner/worker/wakeup.py)
    # On Citus: the buckets this process covers (outbox_buckets() numbers; empty: all of them);
    # None on a single server. Each thread claims bucket by bucket (runner/worker/bucket.py).
    buckets: tuple[int, ...] | None = None


def load_rail(spec: str) -> Rail:
    """The callable `module:attribute` names, imported as `python -c` would (the working
    directory first on the path)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise RailSpecError(f"--rail must be module:callable, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise RailSpecError(f"--rail {spec}: {exc}") from exc
    if not callable(found):
        raise RailSpecError(f"--rail {spec} is not callable")
    return cast(Rail, found)


def run(url: str, options: Options, *, emit: Emit = emit_json) -> int:
    """Runs the worker threads until a signal, then drains; exit 0, or 2 for a bad --rail or port."""
    try:
        rail = load_rail(options.rail)
    except RailSpecError as exc:
        emit({"event": "worker_failed", "sqlstate": None, "error": str(exc)})
        return 2
    try:
        bucket_keys = _bucket_keys(url, options.buckets)
    except (ValueError, psycopg.Error) as exc:
        emit({"event": "worker_failed", "sqlstate": db.sqlstate(exc), "error": str(exc).strip().splitlines()[0]})
        return 2
    stop = StopOnSignal()
    metrics = WorkerMetrics()
    wake = wakeup.WakeSignal() if options.listen else None
    if wake is not None:
        stop.on_stop(wake.close)
        if stop.is_set():  # a signal before the callback was in place
            wake.close()
    try:
        if options.metrics_port is not None:
            port = metrics.serve(options.metrics_port, options.metrics_addr)
            emit({"event": "metrics_serving", "addr": options.metrics_addr, "port": port})
        base = options.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        threads = [threading.Thread(target=_work, name=f"{base}-{n}",
                                    args=(url, f"{base}-{n}", rail, options, stop, metrics, emit, wake,
                                          bucket_keys))
                   for n in range(1, options.concurrency + 1)]
        emit({"event": "worker_started", "worker_ids": [t.name for t in threads], "rail": options.rail,
              "batch_size": options.batch_size, "concurrency": options.concurrency,
              "poll_interval_seconds": options.poll_interval_seconds, "listen": options.listen,
              **({"buckets": len(bucket_keys)} if bucket_keys is not None else {})})
        if wake is not None:
            wakeup.Listener(url, f"{base}-listener", wake, stop.is_set, emit).start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except OSError as exc:  # the metrics port: busy, or not ours to bind
        emit({"event": "worker_failed", "sqlstate": None,
              "error": f"cannot serve metrics on {options.metrics_addr}:{options.metrics_port}: {exc}"})
        return 2
    finally:
        stop.restore()
    emit({"event": "worker_stopped", "signal": stop.received})
    return 0


def _bucket_keys(url: str, buckets: tuple[int, ...] | None) -> list[str] | None:
    """The keys of the buckets asked for (all when none are named); None on a single server."""
    if buckets is None:
        return None
    with Client.connect(url, None, name="outbox worker buckets") as client:
        known = {b.bucket: b.bucket_key for b in client.buckets()}
    unknown = sorted(set(buckets) - set(known))
    if unknown or not known:
        raise ValueError(f"--buckets: no bucket {unknown} (this database has buckets 0 to {len(known) - 1}; "
                         f"outbox migrate --citus makes them)")
    return [known[b] for b in (buckets or sorted(known))]


def _work(url: str, worker_id: str, rail: Rail, options: Options, stop: StopOnSignal, metrics: WorkerMetrics,
          emit: Emit, wake: wakeup.WakeSignal | None, bucket_keys: list[str] | None = None) -> None:
    """One worker thread: its own connection, reopened after a database error until the stop."""
    while not stop.is_set():
        say = lambda line: _say(emit, line)  # noqa: E731
        try:
            with (Worker.connected(url, worker_id, say=say) if bucket_keys is None
                  else BucketWorker.connected_to(url, worker_id, bucket_keys, say=say)) as worker:
                _claim_until_stop(worker, rail, options, stop, metrics, emit, wake)
        except psycopg.Error as exc:
            # Claims this thread held and had not completed stay DISPATCHING: repair's to requeue.
            emit({"event": "worker_error", "worker_id": worker_id, "sqlstate": db.sqlstate(exc),
                  "error": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})
            stop.wait(RECONNECT_SECONDS)
    emit({"event": "worker_drained", "worker_id": worker_id})


def _claim_until_stop(worker: Worker, rail: Rail, options: Options, stop: StopOnSignal, metrics: WorkerMetrics,
                      emit: Emit, wake: wakeup.WakeSignal | None) -> None:
    idle = False
    while not stop.is_set():
        seen = wake.count() if wake is not None else 0  # read before the claim: a wake-up during it counts
        items = worker.claim(options.batch_size)
        metrics.claimed.inc(len(items))
        if not items:
            if not idle:  # once per stretch of waiting, not once per poll
                emit({"event": "worker_idle", "worker_id": worker.worker_id,
                      "poll_interval_seconds": options.poll_interval_seconds,
                      "listening": wake is not None and wake.listening})
                idle = True
            if wake is None:
                stop.wait(options.poll_interval_seconds)
            else:
                wake.wait(seen, options.poll_interval_seconds)
            continue
        idle = False
        # The batch is finished even after a stop: its items are claimed, and a completion now
        # saves each of them a wait for repair.
        announced = False
        for n, item in enumerate(items):
            if stop.is_set() and not announced:
                emit({"event": "draining", "worker_id": worker.worker_id, "claimed_not_dispatched": len(items) - n})
                announced = True
            started = time.perf_counter()
            outcome = worker.dispatch(item, rail)
            metrics.dispatch_latency.observe(time.perf_counter() - started)
            metrics.record_completion(worker.complete(item, outcome).state)


def _say(emit: Emit, line: str) -> None:
    """The Worker's own log lines (JSON text), as records of this process's log."""
    emit(json.loads(line))
