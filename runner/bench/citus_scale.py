"""The scaling figure on Citus: enqueue and dispatch throughput on one worker node against two.

    python -m runner.bench.citus_scale [--items N] [--clients N]   (make bench-citus)

In one run, one after the other: a plain server with the single-node package (the baseline),
then two throwaway Citus clusters (runner/clusters/citus.py), a coordinator with one worker, then
with two; the same 24 participants, the same client threads. Per cluster: the seconds `clients`
ingest threads take to enqueue `items` items, then the seconds `clients` workers (on Citus bucket
workers, each covering its share of the buckets) take to claim and complete them all. The figure
is the ratio two / one of each throughput (and one / plain: what the distribution costs), and,
for where the time went, the CPU seconds each node's server processes and this process used
during each phase (read from /proc). Written to reports/bench/citus-scale.json. Nothing is
asserted: a ratio is reported as measured.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg

from runner.client import Client
from runner.clusters.citus import CitusCluster
from runner.clusters.embedded import EmbeddedCluster
from runner.schema import citus as citus_schema
from runner.schema import migrate
from runner.worker import RailOutcome, Worker
from runner.worker.bucket import BucketWorker

PARTICIPANTS = 24
LOGINS = {"ingest": "outbox_ingest", "executor": "outbox_executor"}
REPORT = Path(__file__).resolve().parents[2] / "reports" / "bench" / "citus-scale.json"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _node_cpu(node: EmbeddedCluster) -> float:
    """CPU seconds of the node's postmaster and its children alive now."""
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


def _cpu(nodes: dict[str, EmbeddedCluster]) -> dict[str, float]:
    times = os.times()
    return {**{name: _node_cpu(node) for name, node in nodes.items()}, "client": times.user + times.system}


def _phase(nodes: dict[str, EmbeddedCluster], targets: list[Callable[[], None]]) -> dict[str, Any]:
    """Run the targets in threads; seconds, and CPU seconds per node. The targets' connections are
    open before and after, so every backend that worked is still there to be counted."""
    threads = [threading.Thread(target=target) for target in targets]
    before, started = _cpu(nodes), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    after = _cpu(nodes)
    return {"seconds": round(seconds, 3),
            "cpu_seconds": {name: round(after[name] - before[name], 2) for name in after}}


def _logins(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for login, role in LOGINS.items():
            conn.execute(f"CREATE ROLE bench_{login} LOGIN IN ROLE {role}")


def _run(nodes: dict[str, EmbeddedCluster], urls: tuple[str, str], items: int, clients: int,
         worker: Callable[[psycopg.Connection, int], Worker]) -> dict[str, Any]:
    """Enqueue `items` with `clients` threads, then dispatch them all with `clients` workers."""
    ingest_url, executor_url = urls
    errors: list[str] = []

    def ingest(client: Client, n: int) -> Callable[[], None]:
        def run() -> None:
            try:
                for i in range(n, items, clients):
                    client.enqueue(f"i-{i}", f"bank-{i % PARTICIPANTS}", f"k-{i}", "SEPA", {"n": i})
            except psycopg.Error as exc:
                errors.append(f"ingest-{n}: {exc.sqlstate}: {exc}")
        return run

    def work(dispatcher: Worker, n: int) -> Callable[[], None]:
        def run() -> None:
            try:
                while claimed := dispatcher.claim(20):
                    for item in claimed:
                        dispatcher.complete(item, RailOutcome("DISPATCHED", rail_reference=item.idempotency_key))
            except psycopg.Error as exc:
                errors.append(f"worker-{n}: {exc.sqlstate}: {exc}")
        return run

    with ExitStack() as stack:
        ingesters = [stack.enter_context(Client.connect(ingest_url, None, name=f"ingest-{n}")) for n in range(clients)]
        enqueue = _phase(nodes, [ingest(client, n) for n, client in enumerate(ingesters)])
        connections = [stack.enter_context(psycopg.connect(executor_url, autocommit=True)) for _ in range(clients)]
        dispatchers = [worker(conn, n) for n, conn in enumerate(connections)]
        dispatch = _phase(nodes, [work(dispatcher, n) for n, dispatcher in enumerate(dispatchers)])
    if errors:
        raise RuntimeError(f"{errors[:3]}")
    return {"items": items, "clients": clients, "enqueue": enqueue, "dispatch": dispatch,
            "enqueue_per_second": round(items / enqueue["seconds"], 1),
            "dispatch_per_second": round(items / dispatch["seconds"], 1)}


def _check_drained(owner_url: str, items: int) -> None:
    with psycopg.connect(owner_url) as conn:
        dispatched = conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_attempts "
                                  "WHERE state = 'DISPATCHED'").fetchone()
        left = conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_pending").fetchone()
    if dispatched != (items,) or left != (0,):
        raise RuntimeError(f"{dispatched} of {items} dispatched, {left} left")


def baseline(items: int, clients: int, say: Callable[[str], None] = print) -> dict[str, Any]:
    """The same load on one plain PostgreSQL server (no Citus): the single-node package."""
    with EmbeddedCluster() as server:
        migrate.migrate(server.database_url, say=lambda line: None)
        _logins(server.admin_url)
        result = _run({"server": server}, (server.url("bench_ingest"), server.url("bench_executor")), items,
                      clients, lambda conn, n: Worker(conn, f"w{n}"))
        _check_drained(server.database_url, items)
    say(f"citus-scale: one plain server: enqueue {result['enqueue_per_second']}/s, "
        f"dispatch {result['dispatch_per_second']}/s")
    return {"worker_nodes": 0, **result}


def measure(workers: int, items: int, clients: int, say: Callable[[str], None] = print) -> dict[str, Any]:
    with CitusCluster(workers=workers) as cluster:
        migrate.migrate(cluster.database_url, say=lambda line: None)
        citus_schema.install(cluster.database_url, say=lambda line: None, required=True)
        _logins(cluster.admin_url)
        executor_url = cluster.url(user="bench_executor")
        with Client.connect(executor_url, None) as client:
            keys = [b.bucket_key for b in client.buckets()]
        assert cluster.coordinator is not None
        nodes: dict[str, EmbeddedCluster] = {"coordinator": cluster.coordinator,
                                             **{f"worker{i}": node for i, node in enumerate(cluster.nodes)}}
        result = _run(nodes, (cluster.url(user="bench_ingest"), executor_url), items, clients,
                      lambda conn, n: BucketWorker(conn, f"w{n}", keys[n::clients]))
        _check_drained(cluster.database_url, items)
    say(f"citus-scale: {workers} worker node(s): enqueue {result['enqueue_per_second']}/s, "
        f"dispatch {result['dispatch_per_second']}/s")
    return {"worker_nodes": workers, **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.bench.citus_scale", description=__doc__)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    plain = baseline(args.items, args.clients)
    one = measure(1, args.items, args.clients)
    two = measure(2, args.items, args.clients)
    ratio = {"enqueue": round(two["enqueue_per_second"] / one["enqueue_per_second"], 3),
             "dispatch": round(two["dispatch_per_second"] / one["dispatch_per_second"], 3)}
    figure = {"plain_server": plain, "one_worker": one, "two_workers": two, "cores": os.cpu_count(),
              "ratio_two_to_one": ratio,
              "ratio_one_worker_to_plain": {
                  "enqueue": round(one["enqueue_per_second"] / plain["enqueue_per_second"], 3),
                  "dispatch": round(one["dispatch_per_second"] / plain["dispatch_per_second"], 3)}}
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(figure, indent=1) + "\n")
    print(f"citus-scale: two worker nodes / one: enqueue {ratio['enqueue']}, dispatch {ratio['dispatch']} "
          f"({os.cpu_count()} cores; {REPORT})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
