"""The bench's verdicts: each target is a ratio of figures from one run, PASS or MISS."""

from __future__ import annotations

from typing import Any

from runner.bench.report import table, targets


def _results(enqueue_tps: float, repair_large_ms: float, ledger_scans: list[str],
             batch_100_items_per_second: float = 2500.0, file_ms: float = 500.0) -> dict[str, Any]:
    run = {"latency_p50_ms": 1.0, "latency_p99_ms": 2.0}
    return {
        "where": "test",
        "baseline": [{"clients": 8, "tps": 1000.0, **run}],
        "enqueue": [{"clients": 8, "tps": enqueue_tps, **run}],
        "hot_participant": {"clients": 8, "tps": 100.0, **run},
        "storm": {"callers": 64, "rounds": 1, "storm_p50_ms": 5.0, "storm_p99_ms": 15.0, "single_p50_ms": 2.0,
                  "independent_p50_ms": 4.0, "independent_p99_ms": 12.0, "items_per_round": [1]},
        "dispatch": [{"batch_size": 1, "workers": 8, "items_per_second": 400.0, "items": 400, "exhausted": False},
                     {"batch_size": 10, "workers": 8, "items_per_second": 900.0, "items": 900, "exhausted": True}],
        "dispatch_pgbench": {"clients": 8, "tps": 380.0, **run},
        "dispatch_pgbench_batches": [
            {"batch_size": batch, "clients": 8, "items_per_second": rate, "items": int(rate), "exhausted": False}
            for batch, rate in ((1, 400.0), (10, 1300.0), (100, batch_100_items_per_second))],
        "file": {"items": 50_000, "participants": 10, "baseline_ms": [200.0], "file_ms": [file_ms],
                 "replay_ms": [300.0], "baseline_median_ms": 200.0, "file_median_ms": file_ms,
                 "replay_median_ms": 300.0},
        "repair": [{"ledger_rows_target": 10_000, "ledger_rows": 10_100, "median_ms": 10.0, "min_ms": 9.0,
                    "max_ms": 11.0},
                   {"ledger_rows_target": 1_000_000, "ledger_rows": 1_000_300, "median_ms": repair_large_ms,
                    "min_ms": 9.0, "max_ms": 30.0}],
        "plans": {"captured": True, "ledger_rows": 1_000_300, "ledger_scans": ledger_scans, "reason": ""},
    }


def _verdicts(results: dict[str, Any]) -> dict[str, str]:
    return {t.name: t.as_json()["verdict"] for t in targets(results)}


def test_every_target_passes_when_the_ratios_hold() -> None:
    assert _verdicts(_results(850.0, 14.0, [])) == {
        "enqueue": "PASS", "dispatch_batch_1": "PASS", "dispatch_batch_1_python": "PASS", "dispatch_batch_10": "PASS",
        "dispatch_pgbench_batch_10": "PASS", "dispatch_pgbench_batch_100": "PASS", "file_enqueue": "PASS",
        "file_replay": "PASS", "repair_growth": "PASS", "duplicate_storm": "PASS", "no_ledger_scan": "PASS"}


def test_a_missed_ratio_says_miss() -> None:
    verdicts = _verdicts(_results(550.0, 16.0, ["claim_outbox_batch (batch 100)"]))
    assert (verdicts["enqueue"], verdicts["repair_growth"], verdicts["no_ledger_scan"]) == ("MISS", "MISS", "MISS")


def test_the_batch_and_file_targets_are_ratios_to_the_same_run() -> None:
    verdicts = _verdicts(_results(850.0, 14.0, [], batch_100_items_per_second=1900.0, file_ms=700.0))
    assert (verdicts["dispatch_pgbench_batch_10"], verdicts["dispatch_pgbench_batch_100"]) == ("PASS", "MISS")
    assert (verdicts["file_enqueue"], verdicts["file_replay"]) == ("MISS", "PASS")


def test_table_prints_each_verdict() -> None:
    results = _results(550.0, 14.0, [])
    results["targets"] = [t.as_json() for t in targets(results)]
    printed = table(results)
    assert "payment file, 50,000 items" in printed and "x batch 1" in printed
    assert "MISS  enqueue" in printed and "PASS  repair_growth" in printed and "(pool ran out)" in printed
