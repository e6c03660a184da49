"""The scaling figure on Citus: enqueue and dispatch throughput on one worker node against two.

    python -m runner.bench.citus_scale [--items N] [--clients N]   (make bench-citus)

In one run, two throwaway Citus clusters one after the other (runner/clusters/citus.py): a
coordinator with one worker, then with two; the same package (outbox migrate --citus), the same
24 participants, the same client threads. Per cluster: the seconds `clients` ingest threads take to
enqueue `items` items, then the seconds `clients` bucket workers (each covering its share of the
buckets) take to claim and complete them all. The figure is the ratio two / one of each
throughput, and, for where the time went, the CPU seconds each node's server processes and this
process used during each phase (read from /proc). Written to reports/bench/citus-scale.json.
Nothing is asserted: a ratio is reported as measured.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from runner import migrate
from runner.bucket_worker import BucketWorker
from runner.client import Client
from runner.clusters.citus import CitusCluster, CitusNode
from runner.schema import citus as citus_schema
from runner.worker import RailOutcome

PARTICIPANTS = 24
LOGINS = {"ingest": "outbox_ingest", "executor": "outbox_executor"}
REPORT = Path(__file__).resolve().parents[2] / "reports" / "bench" / "citus-scale.json"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _node_cpu(node: CitusNode) -> float:
    """CPU seconds of the node's postmaster and its children alive now."""
    assert node.workdir is not None
    postmaster = int((node.datadir / "postmaster.pid").read_text().split()[0])
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == postmaster or ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def _cpu(cluster: CitusCluster) -> dict[str, float]:
    assert cluster.coordinator is not None
    times = os.times()
    return {"coordinator": _node_cpu(cluster.coordinator),
            **{f"worker{i}": _node_cpu(node) for i, node in enumerate(cluster.nodes)},
            "client": times.user + times.system}


def _phase(cluster: CitusCluster, threads: list[threading.Thread]) -> dict[str, Any]:
    before, started = _cpu(cluster), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    after = _cpu(cluster)
    return {"seconds": round(seconds, 3),
            "cpu_seconds": {name: round(after[name] - before[name], 2) for name in after}}


def _threads(target: Callable[[int], None], count: int) -> list[threading.Thread]:
    return [threading.Thread(target=target, args=(n,)) for n in range(count)]


def measure(workers: int, items: int, clients: int, say: Callable[[str], None] = print) -> dict[str, Any]:
    with CitusCluster(workers=workers) as cluster:
        migrate.migrate(cluster.database_url, say=lambda line: None)
        citus_schema.install(cluster.database_url, say=lambda line: None, required=True)
        with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
            for login, role in LOGINS.items():
                conn.execute(f"CREATE ROLE bench_{login} LOGIN IN ROLE {role}")
        ingest_url, executor_url = cluster.url(user="bench_ingest"), cluster.url(user="bench_executor")
        with Client.connect(executor_url, None) as client:
            keys = [b.bucket_key for b in client.buckets()]
        errors: list[str] = []

        def ingest(n: int) -> None:
            try:
                with Client.connect(ingest_url, None, name=f"ingest-{n}") as client:
                    for i in range(n, items, clients):
                        client.enqueue(f"i-{i}", f"bank-{i % PARTICIPANTS}", f"k-{i}", "SEPA", {"n": i})
            except psycopg.Error as exc:
                errors.append(f"ingest-{n}: {exc.sqlstate}: {exc}")

        def work(n: int) -> None:
            try:
                with BucketWorker.connected_to(executor_url, f"w{n}", keys[n::clients]) as worker:
                    while items_claimed := worker.claim(20):
                        for item in items_claimed:
                            worker.complete(item, RailOutcome("DISPATCHED", rail_reference=item.idempotency_key))
            except psycopg.Error as exc:
                errors.append(f"worker-{n}: {exc.sqlstate}: {exc}")

        enqueue = _phase(cluster, _threads(ingest, clients))
        dispatch = _phase(cluster, _threads(work, clients))
        with psycopg.connect(cluster.database_url) as conn:
            dispatched = conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_attempts "
                                      "WHERE state = 'DISPATCHED'").fetchone()
            left = conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_pending").fetchone()
    if errors or dispatched != (items,) or left != (0,):
        raise RuntimeError(f"{workers} worker(s): {dispatched} of {items} dispatched, {left} left; {errors[:3]}")
    result = {"worker_nodes": workers, "items": items, "clients": clients, "enqueue": enqueue, "dispatch": dispatch,
              "enqueue_per_second": round(items / enqueue["seconds"], 1),
              "dispatch_per_second": round(items / dispatch["seconds"], 1)}
    say(f"citus-scale: {workers} worker node(s): enqueue {result['enqueue_per_second']}/s, "
        f"dispatch {result['dispatch_per_second']}/s")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.bench.citus_scale", description=__doc__)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    one = measure(1, args.items, args.clients)
    two = measure(2, args.items, args.clients)
    ratio = {"enqueue": round(two["enqueue_per_second"] / one["enqueue_per_second"], 3),
             "dispatch": round(two["dispatch_per_second"] / one["dispatch_per_second"], 3)}
    figure = {"one_worker": one, "two_workers": two, "cores": os.cpu_count(), "ratio_two_to_one": ratio}
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(figure, indent=1) + "\n")
    print(f"citus-scale: two worker nodes / one: enqueue {ratio['enqueue']}, dispatch {ratio['dispatch']} "
          f"({os.cpu_count()} cores; {REPORT})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
