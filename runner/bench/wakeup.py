"""Prompt wake-up's cost and gain: enqueue throughput without the trigger, with notify_on_enqueue
off and on (pgbench, interleaved rounds of the same run), and enqueue-to-claim latency of an
`outbox worker` polling at its default interval against one that listens.

NOTIFY takes a cluster-wide lock at commit, so every committing enqueue queues behind the one
before it while notifications are on: the throughput ratio on/off is that cost. Off, the trigger
still runs once per INSERT statement and reads the settings row: the ratio off/no trigger is
that cost. Latency is the server's own: the DISPATCHING attempt's claimed_at minus the item's
created_at, for items enqueued one at a time at random moments of the poll cycle.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from runner import db
from runner.bench import pgbench as bench_pgbench
from runner.client import ClaimedItem, Client, Role
from runner.worker import RailOutcome
from runner.worker.process import Options

TRIGGER = "payment_outbox_pending_notify_enqueued"
MODES = ("no_trigger", "off", "on")
DEFAULT_POLL_SECONDS = Options(rail="").poll_interval_seconds  # the worker's default
OUTBOX = Path(sys.executable).parent / "outbox"


class WakeupBenchError(RuntimeError):
    """The latency run did not see every item claimed in time."""


def rail(item: ClaimedItem) -> RailOutcome:
    """The bench worker's rail: every payment goes out at once."""
    return RailOutcome("DISPATCHED", rail_reference=f"bench-{item.attempt_no}")


@dataclass(frozen=True)
class Latency:
    mode: str  # polling | listen
    poll_interval_seconds: float
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    def as_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def set_notify(owner_url: str, mode: str) -> None:
    """As owner (the trigger) and as outbox_operator (the setting): one of MODES."""
    with db.connection(owner_url, application_name="outbox bench wakeup", autocommit=True) as conn:
        action = "DISABLE" if mode == "no_trigger" else "ENABLE"
        conn.execute(sql.SQL("ALTER TABLE payment_outbox.payment_outbox_pending {} TRIGGER {}").format(
            sql.SQL(action), sql.Identifier(TRIGGER)))
    with Client.connect(owner_url, Role.OPERATOR, name="outbox bench wakeup") as client:
        client.set_settings(notify_on_enqueue=mode == "on")


@contextmanager
def draining_listener(owner_url: str) -> Iterator[None]:
    """A connection that LISTENs and reads every notification, as a worker would, for the length of
    the block: the queue of notifications never fills."""
    stop = threading.Event()
    with Client.connect(owner_url, Role.EXECUTOR, name="outbox bench listener") as client:
        client.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(client.wakeup_channel())))

        def drain() -> None:
            while not stop.is_set():
                for _ in client.conn.notifies(timeout=0.2):
                    pass

        thread = threading.Thread(target=drain, name="outbox bench listener", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def enqueue_throughput(owner_url: str, clients: int, seconds: int, rounds: int, truncate: Callable[[], None],
                       say: Callable[[str], None]) -> dict[str, Any]:
    """pgbench enqueues at `clients` clients in each mode, rounds interleaved; median tps per mode
    and the ratios off/no_trigger and on/off."""
    ingest = make_conninfo(owner_url, options="-c role=outbox_ingest")
    pgbench = bench_pgbench.find_pgbench()
    runs: dict[str, list[dict[str, object]]] = {mode: [] for mode in MODES}
    try:
        with draining_listener(owner_url):
            for n in range(rounds):
                for mode in MODES:
                    truncate()
                    set_notify(owner_url, mode)
                    outcome = bench_pgbench.run(ingest, "enqueue_spread.pgbench", clients, seconds, pgbench)
                    say(f"wake-up: enqueue, notify {mode}, round {n + 1}/{rounds}: {outcome.tps:.0f} tps")
                    runs[mode].append(outcome.as_json())
    finally:
        set_notify(owner_url, "off")
    median = {mode: statistics.median(float(str(run["tps"])) for run in runs[mode]) for mode in MODES}
    return {"clients": clients, "seconds": seconds, "rounds": rounds, "runs": runs, "median_tps": median,
            "off_over_no_trigger": median["off"] / median["no_trigger"] if median["no_trigger"] else None,
            "on_over_off": median["on"] / median["off"] if median["off"] else None}


def latency(owner_url: str, mode: str, samples: int, truncate: Callable[[], None],
            say: Callable[[str], None]) -> Latency:
    """Enqueue-to-claim latency of an `outbox worker` at its default poll interval, listening
    (notify_on_enqueue on) or not (off): items enqueued one at a time, at random moments."""
    truncate()
    set_notify(owner_url, "on" if mode == "listen" else "off")
    command = [str(OUTBOX), "worker", "--rail", "runner.bench.wakeup:rail", "--worker-id", f"bench-{mode}",
               "--poll-interval-seconds", str(DEFAULT_POLL_SECONDS), *(["--listen"] if mode == "listen" else [])]
    worker = subprocess.Popen(command, env={**os.environ, "DATABASE_URL": owner_url}, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        _wait_until_ready(worker, listening=mode == "listen")
        chance = random.Random(16)
        with Client.connect(owner_url, Role.INGEST, name="outbox bench wakeup ingest") as client:
            for n in range(samples):
                # Spread over the poll cycle, so polling's latency is sampled at every phase of it.
                time.sleep(chance.uniform(0.0, DEFAULT_POLL_SECONDS))
                client.enqueue(f"wake-{mode}-{n}", f"bench-wake-{n % 10}", f"wake-{mode}/{n}", "SEPA", {"n": n})
        latencies = _claim_latencies(owner_url, samples)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        set_notify(owner_url, "off")
    ordered = sorted(latencies)
    found = Latency(mode=mode, poll_interval_seconds=DEFAULT_POLL_SECONDS, samples=len(ordered),
                    p50_ms=bench_pgbench.percentile(ordered, 0.50), p99_ms=bench_pgbench.percentile(ordered, 0.99),
                    max_ms=ordered[-1])
    say(f"wake-up: enqueue-to-claim, {mode}: p50 {found.p50_ms:.1f} ms, p99 {found.p99_ms:.1f} ms")
    return found


def _wait_until_ready(worker: subprocess.Popen[str], *, listening: bool, bound_seconds: float = 60.0) -> None:
    """Until the worker's first claim found nothing (and its LISTEN is in place): an item enqueued
    earlier would time the worker's start. Its log is read on, and dropped, by a thread."""
    ready = threading.Event()
    wanted = {"worker_idle", *(["listen_started"] if listening else [])}

    def read() -> None:
        assert worker.stdout is not None
        for line in worker.stdout:
            wanted.discard(str(json.loads(line).get("event")) if line.strip() else "")
            if not wanted:
                ready.set()

    threading.Thread(target=read, name="outbox bench worker log", daemon=True).start()
    if not ready.wait(bound_seconds):
        raise WakeupBenchError(f"the bench worker was not ready after {bound_seconds:.0f} s")


def _claim_latencies(owner_url: str, samples: int, bound_seconds: float = 60.0) -> list[float]:
    """claimed_at - item_created_at of every first attempt, once all `samples` are claimed."""
    deadline = time.monotonic() + bound_seconds
    with db.connection(owner_url, application_name="outbox bench wakeup", autocommit=True) as conn:
        while True:
            rows = conn.execute("SELECT extract(EPOCH FROM claimed_at - item_created_at) * 1000 "
                                "FROM payment_outbox.payment_outbox_attempts WHERE attempt_no = 1").fetchall()
            if len(rows) >= samples:
                return [float(row[0]) for row in rows]
            if time.monotonic() > deadline:
                raise WakeupBenchError(f"{len(rows)} of {samples} items claimed after {bound_seconds:.0f} s")
            time.sleep(0.1)


def run(owner_url: str, clients: int, seconds: int, rounds: int, samples: int, truncate: Callable[[], None],
        say: Callable[[str], None]) -> dict[str, Any]:
    try:
        throughput = enqueue_throughput(owner_url, clients, seconds, rounds, truncate, say)
        latencies = {mode: latency(owner_url, mode, samples, truncate, say).as_json() for mode in ("polling", "listen")}
    except psycopg.Error as exc:
        raise WakeupBenchError(f"wake-up bench: {exc}") from exc
    return {"enqueue": throughput, "latency": latencies}
