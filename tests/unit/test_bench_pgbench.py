"""Reading pgbench's summary and per-transaction log, and the nearest-rank percentile."""

from __future__ import annotations

import pytest

from runner.bench.pgbench import (
    PgbenchError,
    parse_log_latencies,
    parse_summary,
    percentile,
)

SUMMARY = """pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: /work/runner/pgbench/enqueue_spread.pgbench
scaling factor: 1
query mode: prepared
number of clients: 4
number of threads: 2
maximum number of tries: 1
duration: 3 s
number of transactions actually processed: 4043
number of failed transactions: 0 (0.000%)
latency average = 2.963 ms
initial connection time = 19.811 ms
tps = 1350.032824 (without initial connection time)
"""


def test_summary_figures() -> None:
    assert parse_summary(SUMMARY) == {"transactions": 4043.0, "failed": 0.0, "latency_average_ms": 2.963,
                                      "tps": 1350.032824}


def test_summary_without_tps_is_refused() -> None:
    truncated = SUMMARY.replace("tps = 1350.032824 (without initial connection time)\n", "")
    with pytest.raises(PgbenchError, match="'tps'"):
        parse_summary(truncated)


def test_aborted_run_summary_is_refused() -> None:
    aborted = ("number of transactions actually processed: 0\nnumber of failed transactions: 0 (NaN%)\n"
               "pgbench: error: Run was aborted; the above results are incomplete.\n")
    with pytest.raises(PgbenchError, match="latency_average_ms"):
        parse_summary(aborted)


def test_log_latencies_in_ms_and_failed_lines_counted() -> None:
    log = "0 1 56361 0 1795920477 436618\n1 1 2976 0 1795920477 469083\n\n0 2 failed 0 1795920478 1000\n"
    assert parse_log_latencies(log) == ([56.361, 2.976], 1)


def test_log_line_that_is_not_pgbench_is_refused() -> None:
    with pytest.raises(PgbenchError):
        parse_log_latencies(["0 1 56361"])


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 0.5)
