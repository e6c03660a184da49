"""Two SQL packages on one server, measured in alternating rounds: a change's cost as ratios.

    .venv/bin/python -m runner.bench.compare --base main            # this checkout's sql/ against main's
    .venv/bin/python -m runner.bench.compare --base main --rounds 5 --seconds 10

The base package (sql/ at a git revision) and this checkout's are migrated into two scratch
databases of one server (the embedded cluster, or DATABASE_URL's). Each workload then runs on one,
then on the other, round after round, the order swapped every round (A B, B A, ...), each run from
empty tables: noise from other jobs on a shared machine hits both alike. Reported per workload:
the median of each side and the median of the per-round ratios head / base (above 1: the head is
faster for throughput; for times, below 1 is faster).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from psycopg.conninfo import make_conninfo

from runner import db, environment
from runner.bench import dispatch as bench_dispatch
from runner.bench import file as bench_file
from runner.bench import pgbench as bench_pgbench
from runner.clusters import scratch

SIDES = ("base", "head")


@dataclass
class Workload:
    name: str
    unit: str  # "tps" (higher is better) or "ms" (lower is better)
    measure: Callable[[str], float]  # owner URL of one side's database -> its figure
    figures: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})

    def ratios(self) -> list[float]:
        """head / base per round: for tps above 1 is faster, for ms below 1 is faster."""
        return [h / b for b, h in zip(self.figures["base"], self.figures["head"], strict=True) if b > 0]


def export_sql(revision: str, into: Path) -> Path:
    """sql/ as it is at `revision`, written under `into`; returns that sql/ root."""
    archive = subprocess.run(["git", "-C", str(environment.REPO), "archive", "--format=tar", revision, "sql"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "sql"


def _empty(owner_url: str) -> None:
    with db.connection(owner_url, application_name="outbox bench compare", autocommit=True) as conn:
        scratch.empty_package_tables(conn)


def workloads(seconds: int, clients: int, pool: int, file_items: int) -> list[Workload]:
    pgbench = bench_pgbench.find_pgbench()

    def pgbench_tps(script: str, role: str, seed: int = 0, defines: dict[str, int] | None = None,
                    prepare: str | None = None) -> Callable[[str], float]:
        def measure(owner_url: str) -> float:
            if seed:
                bench_dispatch.seed(owner_url, seed)
            else:
                _empty(owner_url)
            if prepare:
                with db.connection(owner_url, application_name="outbox bench compare", autocommit=True) as conn:
                    conn.execute(prepare)
            conninfo = make_conninfo(owner_url, options=f"-c role={role}")
            return bench_pgbench.run(conninfo, script, clients, seconds, pgbench, defines).tps
        return measure

    def items_per_second(owner_url: str) -> float:
        bench_dispatch.seed(owner_url, 3 * pool)
        conninfo = make_conninfo(owner_url, options="-c role=outbox_executor")
        bench_pgbench.run(conninfo, "dispatch_batch.pgbench", clients, seconds, pgbench, {"batch": 100})
        items, left = bench_dispatch.completed(owner_url)
        if left == 0:
            raise RuntimeError(f"the {3 * pool:,} seeded items ran out: give a larger --pool")
        return items / seconds

    def file_ms(replay: bool) -> Callable[[str], float]:
        def measure(owner_url: str) -> float:
            _empty(owner_url)
            document = bench_file.items(file_items, 10, 0)
            first = bench_file._timed(owner_url, db.named_sql("bench_file_enqueue"), document, file_items)
            if not replay:
                return first
            return bench_file._timed(owner_url, db.named_sql("bench_file_enqueue"), document, file_items)
        return measure

    return [
        Workload("enqueue (new keys)", "tps", pgbench_tps("enqueue_spread.pgbench", "outbox_ingest")),
        Workload("enqueue (repeats)", "tps", pgbench_tps("enqueue_repeat.pgbench", "outbox_ingest",
                                                         prepare=db.named_sql("bench_seed_repeats"))),
        Workload("dispatch batch 1", "tps", pgbench_tps("dispatch_batch_1.pgbench", "outbox_executor", seed=pool)),
        Workload("dispatch retry", "tps", pgbench_tps("dispatch_retry.pgbench", "outbox_executor", seed=pool)),
        Workload("dispatch batch 100 (items/s)", "tps", items_per_second),
        Workload(f"payment file {file_items:,}", "ms", file_ms(replay=False)),
        Workload(f"payment file {file_items:,} replay", "ms", file_ms(replay=True)),
    ]


def report(work: list[Workload], rounds: int, seconds: int, clients: int, base: str) -> str:
    lines = [f"base {base} against this checkout: {rounds} rounds, {seconds} s runs, {clients} clients, "
             f"order swapped each round", "",
             "| workload | base median | head median | head/base per round | median ratio |",
             "|---|---:|---:|---|---:|"]
    for w in work:
        ratios = w.ratios()
        lines.append(f"| {w.name} ({w.unit}) | {statistics.median(w.figures['base']):.1f} | "
                     f"{statistics.median(w.figures['head']):.1f} | {', '.join(f'{r:.3f}' for r in ratios)} | "
                     f"**{statistics.median(ratios):.3f}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="main", help="git revision whose sql/ is the base (default: main)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pool", type=int, default=60_000,
                        help="due items seeded before each dispatch run (three times as many for batch 100)")
    parser.add_argument("--warmup-seconds", type=int, default=2,
                        help="an unrecorded run of every workload on each side first (0: none)")
    parser.add_argument("--file-items", type=int, default=5_000)
    parser.add_argument("--only", default="", help="run only the workloads whose name contains this")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(f"[compare {time.monotonic() - began:5.0f}s] {line}", file=sys.stderr, flush=True)

    began = time.monotonic()
    work = [w for w in workloads(args.seconds, args.clients, args.pool, args.file_items) if args.only in w.name]
    with tempfile.TemporaryDirectory(prefix="outbox-compare-") as tmp, scratch.server() as server:
        roots = {"base": export_sql(args.base, Path(tmp)), "head": None}
        urls: dict[str, str] = {}
        names: list[str] = []
        try:
            for side in SIDES:
                names.append(scratch.create_database(server.url, f"outbox_compare_{side}"))
                urls[side] = server.database_url(names[-1])
                name = names[-1]
                say(f"migrating {side} ({args.base if side == 'base' else 'this checkout'}) into {name}")
                scratch.prepare(urls[side], root=roots[side])
            if args.warmup_seconds:
                for w in workloads(args.warmup_seconds, args.clients, args.pool, args.file_items):
                    if args.only in w.name:
                        for side in SIDES:
                            say(f"warm-up {w.name} {side}")
                            w.measure(urls[side])
            for number in range(args.rounds):
                order = SIDES if number % 2 == 0 else tuple(reversed(SIDES))
                for w in work:
                    for side in order:
                        figure = w.measure(urls[side])
                        w.figures[side].append(figure)
                        say(f"round {number + 1}/{args.rounds} {w.name} {side}: {figure:.1f} {w.unit}")
        finally:
            for name in names:
                scratch.drop_database(server.admin_url, name)
    print(report(work, args.rounds, args.seconds, args.clients, args.base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
