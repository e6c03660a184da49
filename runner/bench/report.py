"""The bench's verdicts against its targets, and its table, JSON and chart."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGET_CLIENTS = 8


@dataclass(frozen=True)
class Verdict:
    name: str
    rule: str
    have: float | None
    want: float
    higher_is_better: bool

    @property
    def passed(self) -> bool:
        if self.have is None:
            return False
        return self.have >= self.want if self.higher_is_better else self.have <= self.want

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "rule": self.rule, "have": self.have, "want": self.want,
                "verdict": "PASS" if self.passed else "MISS"}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _format(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}"


def targets(results: dict[str, Any]) -> list[Verdict]:
    """The issue's targets, each a ratio against a figure of the same run."""
    baseline = {run["clients"]: run["tps"] for run in results["baseline"]}
    enqueue = {run["clients"]: run["tps"] for run in results["enqueue"]}
    base8 = baseline.get(TARGET_CLIENTS)
    dispatch = {(run["batch_size"], run["workers"]): run["items_per_second"] for run in results["dispatch"]}
    batch1 = max((rate for (batch, _), rate in dispatch.items() if batch == 1), default=None)
    repair = {size["ledger_rows_target"]: size["median_ms"] for size in results["repair"]}
    smallest, largest = (min(repair), max(repair)) if repair else (None, None)
    storm = results["storm"]
    found = [
        Verdict("enqueue", f"enqueue tps / baseline tps at {TARGET_CLIENTS} clients >= 0.8",
               _ratio(enqueue.get(TARGET_CLIENTS), base8), 0.8, True),
        # Like with like: the baseline is a pgbench client, so is this figure. The Python workers'
        # figure is judged too; on 2 cores their own process takes a share of the CPU.
        Verdict("dispatch_batch_1", f"dispatch batch 1 items/s from pgbench, as the baseline / baseline tps "
               f"at {TARGET_CLIENTS} clients >= 0.35",
               _ratio(results["dispatch_pgbench"]["tps"], base8), 0.35, True),
        Verdict("dispatch_batch_1_python", f"dispatch batch 1 items/s from Python worker threads (best worker "
               f"count) / baseline tps at {TARGET_CLIENTS} clients >= 0.35", _ratio(batch1, base8), 0.35, True),
    ]
    for batch in sorted({batch for batch, _ in dispatch if batch > 1}):
        rate = max(r for (b, _), r in dispatch.items() if b == batch)
        found.append(Verdict(f"dispatch_batch_{batch}", f"dispatch batch {batch} items/s / dispatch batch 1 "
                            "items/s > 1 (well above batch 1)", _ratio(rate, batch1), 1.0, True))
    batches = {run["batch_size"]: run["items_per_second"] for run in results["dispatch_pgbench_batches"]}
    for batch, want in ((10, 3.0), (100, 5.0)):
        found.append(Verdict(f"dispatch_pgbench_batch_{batch}", f"dispatch from pgbench, batch {batch} completed in "
                            f"one call, items/s / batch 1 items/s >= {want:g}",
                            _ratio(batches.get(batch), batches.get(1)), want, True))
    file = results["file"]
    found.append(Verdict("file_enqueue", f"payment file of {file['items']:,} items over {file['participants']} "
                        "participants / bare INSERT ... SELECT of its rows <= 3 (median times)",
                        _ratio(file["file_median_ms"], file["baseline_median_ms"]), 3.0, False))
    found.append(Verdict("file_replay", "the same file replayed (every key known) / bare INSERT ... SELECT <= 2 "
                        "(median times)", _ratio(file["replay_median_ms"], file["baseline_median_ms"]), 2.0, False))
    found.append(Verdict("repair_growth", f"repair cycle at {largest:,} / at {smallest:,} ledger rows <= 1.5"
                        if repair else "repair cycle ratio", _ratio(repair.get(largest), repair.get(smallest)),
                        1.5, False))
    found.append(Verdict("duplicate_storm", "storm p99 / single-call p50 <= 10",
                        _ratio(storm["storm_p99_ms"], storm["single_p50_ms"]), 10.0, False))
    wakeup = results.get("wakeup")
    if wakeup is not None:
        found.append(Verdict("wakeup_off_cost", "enqueue tps with notify_on_enqueue off / without its trigger >= 0.9 "
                            f"(median of rounds, {wakeup['enqueue']['clients']} clients)",
                            wakeup["enqueue"]["off_over_no_trigger"], 0.9, True))
        found.append(Verdict("wakeup_latency", "enqueue-to-claim p50, listening / polling at the default interval "
                            "<= 0.2", _ratio(wakeup["latency"]["listen"]["p50_ms"],
                                             wakeup["latency"]["polling"]["p50_ms"]), 0.2, False))
    found.append(Verdict("no_ledger_scan", "hot-path plans that scan the whole ledger = 0",
                        float(len(results["plans"]["ledger_scans"])) if results["plans"]["captured"] else None,
                        0.0, False))
    return found


def table(results: dict[str, Any]) -> str:
    lines = ["outbox bench: " + results["where"], ""]
    lines.append(f"{'clients':>7}  {'baseline tps':>12}  {'enqueue tps':>11}  {'ratio':>5}  "
                 f"{'enqueue p50 ms':>14}  {'p99 ms':>7}")
    enqueue = {run["clients"]: run for run in results["enqueue"]}
    for base in results["baseline"]:
        enq = enqueue[base["clients"]]
        lines.append(f"{base['clients']:>7}  {base['tps']:>12.0f}  {enq['tps']:>11.0f}  "
                     f"{enq['tps'] / base['tps']:>5.2f}  {enq['latency_p50_ms']:>14.2f}  {enq['latency_p99_ms']:>7.2f}")
    hot = results["hot_participant"]
    lines += ["", f"hot participant ({hot['clients']} clients, one allocator row): {hot['tps']:.0f} tps, "
              f"p50 {hot['latency_p50_ms']:.2f} ms, p99 {hot['latency_p99_ms']:.2f} ms"]
    storm = results["storm"]
    lines.append(f"duplicate storm ({storm['callers']} callers x {storm['rounds']} rounds): p50 "
                 f"{storm['storm_p50_ms']:.2f} ms, p99 {storm['storm_p99_ms']:.2f} ms; single call p50 "
                 f"{storm['single_p50_ms']:.2f} ms; items per round {sorted(set(storm['items_per_round']))}")
    lines.append(f"  control, {storm['callers']} concurrent calls with a key and participant each: p50 "
                 f"{storm['independent_p50_ms']:.2f} ms, p99 {storm['independent_p99_ms']:.2f} ms")
    lines += ["", f"{'batch':>5}  {'workers':>7}  {'items/s':>8}  {'items':>7}"]
    for run in results["dispatch"]:
        note = "  (pool ran out)" if run["exhausted"] else ""
        lines.append(f"{run['batch_size']:>5}  {run['workers']:>7}  {run['items_per_second']:>8.0f}  "
                     f"{run['items']:>7}{note}")
    control = results["dispatch_pgbench"]
    base = {run["clients"]: run["tps"] for run in results["baseline"]}.get(control["clients"])
    ratio = f" ({control['tps'] / base:.2f}x the baseline)" if base else ""
    lines.append(f"control: batch 1 from pgbench (a C client), {control['clients']} clients: "
                 f"{control['tps']:.0f} items/s{ratio}")
    lines += ["", f"batch completed in one call, from pgbench, {TARGET_CLIENTS} clients "
              "(two transactions per round: claim, then complete_outbox_attempts):",
              f"{'batch':>5}  {'items/s':>8}  {'x batch 1':>9}  {'x baseline':>10}  {'items':>7}"]
    batch1 = next((run["items_per_second"] for run in results["dispatch_pgbench_batches"]
                   if run["batch_size"] == 1), None)
    base8 = {run["clients"]: run["tps"] for run in results["baseline"]}.get(TARGET_CLIENTS)
    for run in results["dispatch_pgbench_batches"]:
        rate = run["items_per_second"]
        note = "  (pool ran out)" if run["exhausted"] else ""
        lines.append(f"{run['batch_size']:>5}  {rate:>8.0f}  {_format(_ratio(rate, batch1)):>9}  "
                     f"{_format(_ratio(rate, base8)):>10}  {run['items']:>7}{note}")
    file = results["file"]
    file_ratio, replay_ratio = (_format(_ratio(file[f"{kind}_median_ms"], file["baseline_median_ms"]))
                                for kind in ("file", "replay"))
    lines += ["", f"payment file, {file['items']:,} items over {file['participants']} participants, one statement "
              f"each (median of {len(file['file_ms'])}):",
              f"  bare INSERT ... SELECT {file['baseline_median_ms']:.0f} ms; enqueue_payment_outbox_batch "
              f"{file['file_median_ms']:.0f} ms ({file_ratio}x); replayed {file['replay_median_ms']:.0f} ms "
              f"({replay_ratio}x)"]
    lines += _wakeup_lines(results.get("wakeup"))
    lines += ["", f"{'ledger rows':>11}  {'repair cycle ms (median)':>24}  {'min':>6}  {'max':>6}"]
    for size in results["repair"]:
        lines.append(f"{size['ledger_rows']:>11,}  {size['median_ms']:>24.2f}  {size['min_ms']:>6.2f}  "
                     f"{size['max_ms']:>6.2f}")
    plans = results["plans"]
    lines += ["", "plans: " + (f"captured at {plans['ledger_rows']:,} ledger rows; ledger scans: "
                               f"{', '.join(plans['ledger_scans']) or 'none'}" if plans["captured"]
                               else f"not captured ({plans['reason']})")]
    lines += ["", "targets (ratios against the same run):"]
    for target in results["targets"]:
        have = "n/a" if target["have"] is None else f"{target['have']:.2f}"
        lines.append(f"  {target['verdict']:<4}  {target['name']:<26} {have:>6}  {target['rule']}")
    return "\n".join(lines) + "\n"


def _wakeup_lines(wakeup: dict[str, Any] | None) -> list[str]:
    """Prompt wake-up: what notify_on_enqueue costs enqueues, and what it saves a waiting item."""
    if wakeup is None:
        return []
    enqueue, latency = wakeup["enqueue"], wakeup["latency"]
    median = enqueue["median_tps"]
    lines = ["", f"prompt wake-up: enqueue at {enqueue['clients']} clients, median of {enqueue['rounds']} interleaved "
             f"rounds of {enqueue['seconds']} s:",
             f"  no trigger {median['no_trigger']:.0f} tps; notify off {median['off']:.0f} tps "
             f"({_format(enqueue['off_over_no_trigger'])}x); notify on {median['on']:.0f} tps "
             f"({_format(enqueue['on_over_off'])}x off)",
             "  enqueue-to-claim (claimed_at - created_at), one item at a time:"]
    for mode in ("polling", "listen"):
        run = latency[mode]
        lines.append(f"    {mode:<8} poll interval {run['poll_interval_seconds']:g} s, {run['samples']} items: "
                     f"p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms, max {run['max_ms']:.1f} ms")
    return lines


def write(results: dict[str, Any], directory: Path) -> dict[str, Path]:
    """bench.json, bench.txt, plans.txt and, with matplotlib installed, bench.png."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {"json": directory / "bench.json", "table": directory / "bench.txt", "plans": directory / "plans.txt"}
    chart = chart_png(results, directory / "bench.png")
    results["chart"] = chart.name if chart else None
    if chart:
        written["chart"] = chart
    written["json"].write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    written["table"].write_text(table(results))
    written["plans"].write_text("".join(f"==== {call}\n{plan}\n\n" for call, plan in results["plans"]["plans"].items())
                                or f"not captured: {results['plans']['reason']}\n")
    return written


def chart_png(results: dict[str, Any], path: Path) -> Path | None:
    """Throughput against clients, and repair time against ledger size; None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.5))
    for series, label in (("baseline", "baseline INSERT"), ("enqueue", "enqueue_payment_outbox")):
        runs = results[series]
        left.plot([r["clients"] for r in runs], [r["tps"] for r in runs], marker="o", label=label)
    left.set(xlabel="clients", ylabel="transactions per second", title="Throughput against clients")
    left.set_xticks([r["clients"] for r in results["baseline"]])
    left.legend()
    left.grid(alpha=0.3)
    sizes = results["repair"]
    right.plot([s["ledger_rows"] for s in sizes], [s["median_ms"] for s in sizes], marker="o", color="tab:red")
    right.set(xscale="log", xlabel="ledger rows", ylabel="ms per repair cycle (100 zombies, median)",
              title="Repair cycle against ledger size")
    right.set_ylim(bottom=0)
    right.grid(alpha=0.3)
    figure.suptitle(f"outbox bench {results['started']} ({results['where']})", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
