"""`outbox bench --quick` end to end: it completes and its JSON (and chart) hold every measurement.

No timing is asserted: the figures depend on the machine. The bench runs in a subprocess on the
server the tests use: the embedded cluster's binaries start a cluster of its own (so a superuser
can capture the plans), DATABASE_URL is passed through when the tests run against a server.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Server

REPO = Path(__file__).resolve().parents[2]
PLAN_CALLS = {"enqueue (new key)", "enqueue (repeated key)", "claim_outbox_batch (batch 100)",
              "complete_outbox_attempt (DISPATCHED)", "repair_zombie_attempts (batch 100)"}
TARGETS = {"enqueue", "dispatch_batch_1", "dispatch_batch_1_python", "dispatch_batch_10", "dispatch_batch_100",
           "dispatch_pgbench_batch_10", "dispatch_pgbench_batch_100", "file_enqueue", "file_replay",
           "repair_growth", "duplicate_storm", "no_ledger_scan", "wakeup_off_cost", "wakeup_latency"}


@pytest.mark.bench
def test_quick_bench_writes_every_measurement(server: Server, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    if server.cluster is None:
        env["DATABASE_URL"] = server.url
    out = tmp_path / "bench"
    result = subprocess.run([sys.executable, "-m", "runner.cli", "bench", "--quick", "--output-dir", str(out)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"have exit {result.returncode}, want 0:\n{result.stdout}\n{result.stderr}"
    assert "[bench" in result.stderr, "want progress lines on stderr"

    results = json.loads((out / "bench.json").read_text())
    for series in ("baseline", "enqueue"):
        assert [run["clients"] for run in results[series]] == [1, 4, 8, 16], series
        for run in results[series]:
            assert run["transactions"] > 0 and run["tps"] > 0 and run["failed"] == 0, (series, run)
            assert 0 < run["latency_p50_ms"] <= run["latency_p99_ms"], (series, run)
    hot = results["hot_participant"]
    assert hot["tps"] > 0 and 0 < hot["latency_p50_ms"] <= hot["latency_p99_ms"], hot
    storm = results["storm"]
    assert storm["callers"] == 64 and storm["items_per_round"] == [1] * storm["rounds"], storm
    assert 0 < storm["storm_p50_ms"] <= storm["storm_p99_ms"] and storm["single_p50_ms"] > 0, storm
    assert 0 < storm["independent_p50_ms"] <= storm["independent_p99_ms"], storm
    assert {(run["batch_size"], run["workers"]) for run in results["dispatch"]} == {
        (batch, workers) for batch in (1, 10, 100) for workers in (1, 4, 8)}
    assert all(run["items"] > 0 and run["items_per_second"] > 0 for run in results["dispatch"]), results["dispatch"]
    control = results["dispatch_pgbench"]
    assert control["clients"] == 8 and control["tps"] > 0 and control["failed"] == 0, control
    batches = results["dispatch_pgbench_batches"]
    assert [run["batch_size"] for run in batches] == [1, 10, 100], batches
    assert all(run["clients"] == 8 and run["failed"] == 0 and run["items"] > 0 for run in batches), batches
    file = results["file"]
    assert file["items"] == 5_000 and file["participants"] == 10, file
    assert all(len(file[kind]) == 1 and file[kind][0] > 0 for kind in ("baseline_ms", "file_ms", "replay_ms")), file
    assert [size["ledger_rows_target"] for size in results["repair"]] == [10_000, 100_000]
    for size in results["repair"]:
        assert size["ledger_rows"] >= size["ledger_rows_target"] and len(size["cycles_ms"]) == 3, size
    wakeup = results["wakeup"]
    assert set(wakeup["enqueue"]["median_tps"]) == {"no_trigger", "off", "on"}, wakeup
    assert all(run["tps"] > 0 and run["failed"] == 0 for runs in wakeup["enqueue"]["runs"].values() for run in runs)
    for mode in ("polling", "listen"):
        run = wakeup["latency"][mode]
        assert run["samples"] == 10 and 0 <= run["p50_ms"] <= run["p99_ms"] <= run["max_ms"], (mode, run)
    if server.cluster is not None:  # a superuser is there to LOAD auto_explain
        assert results["plans"]["captured"] and set(results["plans"]["plans"]) == PLAN_CALLS, results["plans"]
        assert all("Query Text" in plan for plan in results["plans"]["plans"].values())
    verdicts = {target["name"]: target["verdict"] for target in results["targets"]}
    assert set(verdicts) == TARGETS and set(verdicts.values()) <= {"PASS", "MISS"}, verdicts
    for name, verdict in verdicts.items():
        assert f"{verdict}  {name}" in result.stdout, f"want {verdict} {name} printed on stdout"

    assert (out / "bench.txt").read_text() in result.stdout
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and results["chart"] == "bench.png"
    else:  # the chart is the optional extra `bench`; make bench installs it
        assert results["chart"] is None and "chart: not written" in result.stdout
