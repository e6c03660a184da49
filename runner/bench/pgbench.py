"""Runs pgbench on one of runner/bench/pgbench/*.pgbench and reads what it printed and logged."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runner.clusters import embedded as cluster

SCRIPTS = Path(__file__).parent / "pgbench"
SUMMARY_FIELDS = {
    "transactions": re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE),
    "failed": re.compile(r"^number of failed transactions: (\d+)", re.MULTILINE),
    "latency_average_ms": re.compile(r"^latency average = ([\d.]+) ms", re.MULTILINE),
    "tps": re.compile(r"^tps = ([\d.]+) \(without initial connection time\)", re.MULTILINE),
}


class PgbenchError(RuntimeError):
    """pgbench failed or printed something we cannot read."""


@dataclass(frozen=True)
class PgbenchRun:
    script: str
    clients: int
    seconds: int
    transactions: int
    failed: int
    tps: float
    latency_average_ms: float
    latency_p50_ms: float
    latency_p99_ms: float

    def as_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def find_pgbench() -> Path:
    """pgbench next to the server binaries the embedded cluster uses, else on PATH."""
    try:
        candidate = cluster.find_bindir() / "pgbench"
        if candidate.is_file():
            return candidate
    except cluster.ClusterError:
        pass
    found = shutil.which("pgbench")
    if not found:
        raise PgbenchError("pgbench not found: install PostgreSQL's client programs (apt-get install postgresql).")
    return Path(found)


def parse_summary(text: str) -> dict[str, float]:
    """The figures of pgbench's closing summary; every field must be there."""
    found: dict[str, float] = {}
    for name, pattern in SUMMARY_FIELDS.items():
        match = pattern.search(text)
        if match is None:
            raise PgbenchError(f"pgbench summary has no {name!r} line:\n{text}")
        found[name] = float(match.group(1))
    return found


def parse_log_latencies(lines: list[str] | str) -> tuple[list[float], int]:
    """Latencies in ms from pgbench's per-transaction log (-l), and the number of failed lines.

    Each line is `client_id transaction_no time script_no time_epoch time_us [...]`; `time` is
    the transaction's latency in microseconds, or `failed` / `skipped`.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    latencies: list[float] = []
    failed = 0
    for line in lines:
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 6:
            raise PgbenchError(f"not a pgbench log line: {line!r}")
        if fields[2].isdigit():
            latencies.append(int(fields[2]) / 1000.0)
        else:
            failed += 1
    return latencies, failed


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `fraction` of all at or below it."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def run(conninfo: str, script: str, clients: int, seconds: int, pgbench: Path | None = None,
        defines: dict[str, int] | None = None) -> PgbenchRun:
    """pgbench -M prepared with `clients` connections for `seconds`, the script's variables set
    from `defines` (pgbench -D); latencies from its log."""
    with tempfile.TemporaryDirectory(prefix="outbox-bench-pgbench-") as logs:
        command = [str(pgbench or find_pgbench()), "--no-vacuum", "--protocol=prepared",
                   f"--client={clients}", f"--jobs={min(clients, 4)}", f"--time={seconds}",
                   *(f"--define={name}={value}" for name, value in (defines or {}).items()),
                   f"--file={SCRIPTS / script}", "--log", f"--log-prefix={Path(logs) / 'tx'}", conninfo]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PgbenchError(f"pgbench {script} with {clients} clients exited {result.returncode}:\n"
                               f"{result.stdout}{result.stderr}")
        summary = parse_summary(result.stdout)
        latencies: list[float] = []
        failed_lines = 0
        for log in sorted(Path(logs).glob("tx.*")):
            found, failed = parse_log_latencies(log.read_text())
            latencies.extend(found)
            failed_lines += failed
    if not latencies:
        raise PgbenchError(f"pgbench {script} with {clients} clients completed no transaction")
    return PgbenchRun(script=script, clients=clients, seconds=seconds, transactions=int(summary["transactions"]),
                      failed=max(int(summary["failed"]), failed_lines), tps=summary["tps"],
                      latency_average_ms=summary["latency_average_ms"],
                      latency_p50_ms=percentile(latencies, 0.50), latency_p99_ms=percentile(latencies, 0.99))
