"""outbox bench: what the outbox costs per payment on this server, as ratios against a baseline
measured on the same server in the same run (these machines are noisy, absolute figures drift).

Runs on the embedded cluster (fsync on) when DATABASE_URL is unset, else on that server, in a
scratch database of its own that it drops at the end. pgbench connects as the owner login with
`options=-c role=outbox_ingest`, so every call runs as the runtime role, as a worker's would.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from runner import db, environment
from runner.bench import dispatch as bench_dispatch
from runner.bench import file as bench_file
from runner.bench import pgbench as bench_pgbench
from runner.bench import repair as bench_repair
from runner.bench import report as bench_report
from runner.bench import storm as bench_storm
from runner.bench import wakeup as bench_wakeup
from runner.clusters import embedded as cluster
from runner.clusters import scratch

TARGET_CLIENTS = bench_report.TARGET_CLIENTS


@dataclass(frozen=True)
class BenchPlan:
    """How much of everything to run: the full bench or the CI smoke (--quick)."""

    seconds: int
    clients: tuple[int, ...] = (1, 4, 8, 16)
    hot_clients: int = 8
    storm_callers: int = 64
    storm_rounds: int = 5
    single_calls: int = 200
    dispatch_batches: tuple[int, ...] = (1, 10, 100)
    dispatch_workers: tuple[int, ...] = (1, 4, 8)
    ledger_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    repair_cycles: int = 15
    file_items: int = 50_000
    file_participants: int = 10
    file_repeats: int = 3
    wakeup_rounds: int = 3
    wakeup_samples: int = 100

    @classmethod
    def full(cls, seconds: int | None) -> BenchPlan:
        return cls(seconds=seconds or 10)

    @classmethod
    def quick(cls, seconds: int | None) -> BenchPlan:
        return cls(seconds=seconds or 1, storm_rounds=2, single_calls=50, ledger_sizes=(10_000, 100_000),
                   repair_cycles=3, file_items=5_000, file_repeats=1,
                   wakeup_rounds=1, wakeup_samples=10)


@dataclass(frozen=True)
class BenchDatabase:
    where: str
    owner_url: str  # the scratch database, as the login that owns the package
    admin_url: str | None  # a superuser in that database, for auto_explain; None when we have none
    settings: dict[str, str]


class Progress:
    def __init__(self) -> None:
        self.began = time.monotonic()

    def __call__(self, line: str) -> None:
        print(f"[bench {time.monotonic() - self.began:5.0f}s] {line}", file=sys.stderr, flush=True)


def run(quick: bool = False, seconds: int | None = None, output_dir: Path | None = None,
        say: Callable[[str], None] | None = None) -> tuple[dict[str, Any], dict[str, Path]]:
    say = say or Progress()
    plan = BenchPlan.quick(seconds) if quick else BenchPlan.full(seconds)
    started = datetime.now(UTC)
    git = environment.git_state()
    directory = output_dir or environment.REPO / "reports" / "bench" / f"{started:%Y%m%dT%H%M%SZ}-{git['short']}"
    results: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "mode": "quick" if quick else "full",
                               "plan": plan.__dict__, "git": {"commit": git["commit"], "dirty": git["dirty"]},
                               "host": {**environment.host(), "cpus": os.cpu_count(),
                                        "load_average_start": list(os.getloadavg())}}
    with target_database(say) as target:
        results["where"] = target.where
        results["server"] = target.settings
        measure(target, plan, results, say)
    results["host"]["load_average_end"] = list(os.getloadavg())
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["targets"] = [t.as_json() for t in bench_report.targets(results)]
    written = bench_report.write(results, directory)
    return results, written


def measure(target: BenchDatabase, plan: BenchPlan, results: dict[str, Any], say: Callable[[str], None]) -> None:
    ingest = make_conninfo(target.owner_url, options="-c role=outbox_ingest")
    pgbench = bench_pgbench.find_pgbench()
    results["baseline"], results["enqueue"] = [], []
    for clients in plan.clients:  # interleaved, so noise from other jobs hits both alike
        for series, script in (("baseline", "baseline_insert.pgbench"), ("enqueue", "enqueue_spread.pgbench")):
            _truncate(target.owner_url)
            say(f"{series}: {clients} clients for {plan.seconds} s")
            outcome = bench_pgbench.run(ingest, script, clients, plan.seconds, pgbench)
            say(f"{series}: {clients} clients: {outcome.tps:.0f} tps")
            results[series].append(outcome.as_json())

    _truncate(target.owner_url)
    say(f"hot participant: {plan.hot_clients} clients for {plan.seconds} s")
    hot = bench_pgbench.run(ingest, "enqueue_hot.pgbench", plan.hot_clients, plan.seconds, pgbench)
    results["hot_participant"] = hot.as_json()

    _truncate(target.owner_url)
    say(f"duplicate storm: {plan.storm_callers} callers x {plan.storm_rounds} rounds")
    results["storm"] = bench_storm.run(target.owner_url, plan.storm_callers, plan.storm_rounds,
                                       plan.single_calls).as_json()

    results["dispatch"] = []
    best = 2000.0  # items/s guess before the first run; sizes the pool of due items
    for batch in plan.dispatch_batches:
        for workers in plan.dispatch_workers:
            pool = max(2000, int(2 * best * plan.seconds))
            say(f"dispatch: batch {batch}, {workers} workers for {plan.seconds} s (seeding {pool:,} items)")
            bench_dispatch.seed(target.owner_url, pool)
            dispatched = bench_dispatch.run(target.owner_url, workers, batch, plan.seconds, pool)
            best = max(best, dispatched.items_per_second)
            say(f"dispatch: batch {batch}, {workers} workers: {dispatched.items_per_second:.0f} items/s")
            results["dispatch"].append(dispatched.as_json())

    # The same batch-1 loop from pgbench, a C client: tells the cost of the Python workers from the server's.
    pool = max(2000, int(2 * best * plan.seconds))
    say(f"dispatch: batch 1 from pgbench, {TARGET_CLIENTS} clients for {plan.seconds} s (seeding {pool:,} items)")
    bench_dispatch.seed(target.owner_url, pool)
    executor = make_conninfo(target.owner_url, options="-c role=outbox_executor")
    control = bench_pgbench.run(executor, "dispatch_batch_1.pgbench", TARGET_CLIENTS, plan.seconds, pgbench)
    results["dispatch_pgbench"] = control.as_json()

    # Batch completion from pgbench: claim a batch, then one complete_outbox_attempts call.
    results["dispatch_pgbench_batches"] = []
    for batch in plan.dispatch_batches:
        pool = max(2000, int(2 * best * plan.seconds))
        say(f"dispatch: batch {batch} completed in one call, from pgbench, {TARGET_CLIENTS} clients for "
            f"{plan.seconds} s (seeding {pool:,} items)")
        bench_dispatch.seed(target.owner_url, pool)
        outcome = bench_pgbench.run(executor, "dispatch_batch.pgbench", TARGET_CLIENTS, plan.seconds, pgbench,
                                    {"batch": batch})
        items, left = bench_dispatch.completed(target.owner_url)
        best = max(best, items / plan.seconds)
        say(f"dispatch: batch {batch} from pgbench: {items / plan.seconds:.0f} items/s")
        results["dispatch_pgbench_batches"].append({**outcome.as_json(), "batch_size": batch, "pool": pool,
                                                    "items": items, "exhausted": left == 0,
                                                    "items_per_second": items / plan.seconds})

    say(f"payment file: {plan.file_items:,} items over {plan.file_participants} participants, "
        f"{plan.file_repeats} rounds of bare INSERT, file, replay")
    results["file"] = bench_file.run(target.owner_url, plan.file_items, plan.file_participants, plan.file_repeats,
                                     lambda: _truncate(target.owner_url)).as_json()

    say(f"wake-up: enqueue at {TARGET_CLIENTS} clients, trigger absent / notify off / on, {plan.wakeup_rounds} "
        f"rounds of {plan.seconds} s; enqueue-to-claim latency, polling and listening, "
        f"{plan.wakeup_samples} items each")
    results["wakeup"] = bench_wakeup.run(target.owner_url, TARGET_CLIENTS, plan.seconds, plan.wakeup_rounds,
                                         plan.wakeup_samples, lambda: _truncate(target.owner_url), say)

    sizes, plans = bench_repair.run(target.owner_url, target.owner_url, target.admin_url,
                                    list(plan.ledger_sizes), plan.repair_cycles, say)
    results["repair"] = [{**size.as_json(), "ledger_rows_target": wanted}
                         for size, wanted in zip(sizes, plan.ledger_sizes, strict=True)]
    results["plans"] = plans.as_json()


def _truncate(owner_url: str) -> None:
    """As owner, between runs: each run starts from empty tables, the baseline's and every table of
    the package (read from the catalog, the key register included)."""
    with db.connection(owner_url, application_name="outbox bench seed", autocommit=True) as conn:
        scratch.empty_package_tables(conn, "outbox_bench.baseline_insert")


@contextmanager
def target_database(say: Callable[[str], None]) -> Iterator[BenchDatabase]:
    """A migrated scratch database on DATABASE_URL's server or on a throwaway cluster."""
    if not os.environ.get("DATABASE_URL"):
        say("starting an embedded PostgreSQL cluster (fsync on)")
    with scratch.server() as server:
        say("migrating a scratch database")
        with scratch.database(server.url, "outbox_bench", admin_url=server.admin_url) as owner_url:
            with db.connection(owner_url, application_name="outbox bench setup", autocommit=True) as conn:
                conn.execute(db.named_sql("bench_baseline_table"))
                superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
            settings = environment.server_settings(owner_url)
            name = conninfo_to_dict(owner_url)["dbname"]
            admin_url = (server.cluster.url(user=cluster.SUPERUSER, database=str(name)) if server.cluster
                         else owner_url if superuser and superuser[0] else None)
            described = (f"{server.where} PostgreSQL {settings.get('server_version_num')}, fsync "
                         f"{settings.get('fsync')}, synchronous_commit {settings.get('synchronous_commit')}, "
                         f"{os.cpu_count()} CPUs")
            yield BenchDatabase(where=described, owner_url=owner_url, admin_url=admin_url, settings=settings)


def main(quick: bool, seconds: int | None, output_dir: Path | None) -> int:
    """Exit 0 when every measurement was taken, whatever the verdicts (a MISS is a finding, not a crash)."""
    try:
        results, written = run(quick=quick, seconds=seconds, output_dir=output_dir)
    except (bench_pgbench.PgbenchError, bench_repair.BenchError, bench_wakeup.WakeupBenchError,
            cluster.ClusterError) as exc:
        print(f"outbox bench: {exc}", file=sys.stderr)
        return 1
    print(bench_report.table(results), end="")
    for kind, path in written.items():
        print(f"{kind}: {path}")
    if "chart" not in written:
        print("chart: not written (matplotlib missing: pip install -c constraints.txt -e '.[bench]')")
    return 0
