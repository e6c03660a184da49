"""`outbox metrics`, `outbox repair --loop` (signals, per-cycle threshold, served metrics), the exit
codes of `outbox repair`, and the postgres_exporter queries file."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from runner import db
from runner.client import Client, Role
from runner.clusters import scratch
from runner.operator import metrics, repair
from tests.conftest import Database, Server
from tests.helpers import zombies
from tests.helpers.support import ProofRecord, role_connection

pytestmark = pytest.mark.proof

EXPORTER_FILE = Path(__file__).resolve().parents[2] / "deploy" / "postgres_exporter" / "queries.yaml"


def samples(text: str) -> dict[str, float]:
    """Every sample of an exposition, by sample name, parsed with prometheus_client's own parser."""
    return {sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples}


def enqueue(url: str, count: int) -> None:
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        for n in range(count):
            key = uuid.uuid4().hex
            client.enqueue(f"instr-{key}", "bank-m", key, "sepa", {"n": n})


def outbox_env(url: str, threshold: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "ZOMBIE_THRESHOLD_SECONDS"}
    env["DATABASE_URL"] = url
    if threshold is not None:
        env["ZOMBIE_THRESHOLD_SECONDS"] = threshold
    return env


def test_outbox_metrics_prints_prometheus_exposition(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    zombies.seed_stale_claim(url, uuid.uuid4().hex[:12])
    enqueue(url, 2)
    done = subprocess.run([str(zombies.OUTBOX), "metrics"], env=outbox_env(url, "1"), capture_output=True,
                          text=True, timeout=60, check=False)
    proof.observe(stdout=done.stdout, stderr=done.stderr)
    proof.check("exit 0", want=0, have=done.returncode)
    got = samples(done.stdout)
    proof.check("the gauges, as read by outbox_readonly", want={
        "payment_outbox_queue_depth": 3.0, "payment_outbox_due_now": 2.0, "payment_outbox_in_flight": 1.0,
        "payment_outbox_stuck_dispatching": 1.0, "payment_outbox_repair_threshold_seconds": 1.0,
        "payment_outbox_zombies_requeued_total": 0.0, "payment_outbox_zombies_requeued_last_cycle": 0.0,
    }, have={name: got.get(name) for name in (
        "payment_outbox_queue_depth", "payment_outbox_due_now", "payment_outbox_in_flight",
        "payment_outbox_stuck_dispatching", "payment_outbox_repair_threshold_seconds",
        "payment_outbox_zombies_requeued_total", "payment_outbox_zombies_requeued_last_cycle")})
    proof.check("oldest due age is a non-negative number", want=True,
                have=got.get("payment_outbox_oldest_due_age_seconds", -1) >= 0)


def test_repair_loop_serves_metrics_and_stops_cleanly_on_sigterm(clean_database: Database,
                                                                   proof: ProofRecord) -> None:
    url = clean_database.url
    item = zombies.seed_stale_claim(url, uuid.uuid4().hex[:12])
    command = [str(zombies.OUTBOX), "repair", "--loop", "--interval-seconds", "3600", "--metrics-port", "0",
               "--metrics-addr", "127.0.0.1"]
    process = subprocess.Popen(command, env=outbox_env(url, "1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    lines: list[dict[str, Any]] = []
    try:
        for raw in process.stdout:  # the first cycle's summary line is the cue; no sleeping
            lines.append(json.loads(raw))
            if lines[-1]["event"] in ("repair_cycle", "repair_failed"):
                break
        port = next(line["port"] for line in lines if line["event"] == "metrics_serving")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
            scraped = samples(response.read().decode())
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines += [json.loads(raw) for raw in out.splitlines() if raw.strip()]
    proof.observe(stdout=lines, stderr=err)
    proof.check("the first cycle requeued the zombie", want=[item.outbox_id],
                have=[line["outbox_id"] for line in lines if line["event"] == "zombie_requeued"])
    proof.check("scraped after the first cycle", want={
        "payment_outbox_zombies_requeued_total": 1.0, "payment_outbox_zombies_requeued_last_cycle": 1.0,
        "payment_outbox_repair_cycles_total": 1.0, "payment_outbox_stuck_dispatching": 0.0,
        "payment_outbox_due_now": 1.0, "payment_outbox_in_flight": 0.0, "payment_outbox_queue_depth": 1.0,
    }, have={name: scraped.get(name) for name in (
        "payment_outbox_zombies_requeued_total", "payment_outbox_zombies_requeued_last_cycle",
        "payment_outbox_repair_cycles_total", "payment_outbox_stuck_dispatching", "payment_outbox_due_now",
        "payment_outbox_in_flight", "payment_outbox_queue_depth")})
    proof.check("SIGTERM ends the loop with exit 0", want=0, have=process.returncode)
    proof.check("the last line says why it stopped", want={"event": "repair_stopped", "cycles": 1, "signal": "SIGTERM"},
                have={key: lines[-1].get(key) for key in ("event", "cycles", "signal")})


def test_loop_reads_the_threshold_at_each_cycle_and_finishes_the_cycle_on_sigint(
        clean_database: Database, proof: ProofRecord, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: the log callback changes the environment after cycle 1 and raises SIGINT during
    cycle 2's summary; cycle 2 uses the new value and is the last."""
    monkeypatch.setenv("ZOMBIE_THRESHOLD_SECONDS", "5")
    lines: list[dict[str, Any]] = []

    def emit(record: dict[str, Any]) -> None:
        lines.append(record)
        if record["event"] == "repair_cycle" and record["cycle"] == 1:
            os.environ["ZOMBIE_THRESHOLD_SECONDS"] = "7"
        elif record["event"] == "repair_cycle" and record["cycle"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.getsignal(signal.SIGINT)
    code = repair.run(clean_database.url, repair.Options(loop=True, interval_seconds=0), emit=emit)
    proof.check("exit 0", want=0, have=code)
    proof.check("each cycle used the environment as it was when the cycle started", want=[(1, 5), (2, 7)],
                have=[(line["cycle"], line["threshold_seconds"]) for line in lines if line["event"] == "repair_cycle"])
    proof.check("stopped after cycle 2 by SIGINT", want={"event": "repair_stopped", "cycles": 2, "signal": "SIGINT"},
                have={key: lines[-1].get(key) for key in ("event", "cycles", "signal")})
    proof.check("the previous SIGINT handler is restored", want=previous, have=signal.getsignal(signal.SIGINT))


def test_a_bad_threshold_is_a_clear_error_and_repairs_nothing(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    item = zombies.seed_stale_claim(url, uuid.uuid4().hex[:12])
    for value in ("-1", "ten", "1.5", ""):
        run = zombies.run_repair(url, threshold=value)
        proof.check(f"ZOMBIE_THRESHOLD_SECONDS={value!r}: exit 2 with the variable named", want=(2, True),
                    have=(run.returncode, any("ZOMBIE_THRESHOLD_SECONDS" in line.get("error", "")
                                              for line in run.events("repair_failed"))))
    proof.check("nothing was repaired", want=[(1, "DISPATCHING", item.worker_id)],
                have=zombies.ledger(url, item.outbox_id))


def test_a_database_error_exits_1_with_its_sqlstate(server: Server, proof: ProofRecord) -> None:
    """A database without the package: the call fails, and the log line names the SQLSTATE."""
    with scratch.database(server.url, "outbox_empty", prepared=False, admin_url=server.admin_url) as url:
        run = zombies.run_repair(url)
    proof.observe(stdout=run.lines, stderr=run.stderr)
    proof.check("exit 1", want=1, have=run.returncode)
    proof.check("one repair_failed line with the SQLSTATE (schema payment_outbox does not exist)", want=["3F000"],
                have=[line["sqlstate"] for line in run.events("repair_failed")])


def _exporter_queries() -> dict[str, Any]:
    return yaml.safe_load(EXPORTER_FILE.read_text())


def _strip_comments(text: str) -> str:
    return " ".join(" ".join(line for line in text.splitlines() if not line.startswith("--")).split()).rstrip(";")


def test_postgres_exporter_queries_run_as_runtime_roles(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    zombies.seed_stale_claim(url, uuid.uuid4().hex[:12], claimed_seconds_ago=600)
    enqueue(url, 1)
    queries = _exporter_queries()
    exported: set[str] = set()
    labels: dict[str, list[str]] = {}
    rows_by_namespace: dict[str, list[dict[str, Any]]] = {}
    for namespace, spec in queries.items():
        declared = [next(iter(entry)) for entry in spec["metrics"]]
        usages = {name: meta.get("usage") for entry in spec["metrics"] for name, meta in entry.items()}
        proof.check(f"{namespace}: every column is a described GAUGE, LABEL or DISCARD", want=[], have=[
            name for entry in spec["metrics"] for name, meta in entry.items()
            if meta.get("usage") not in ("GAUGE", "LABEL", "DISCARD") or not meta.get("description")])
        exported |= {f"{namespace}_{column}" for column in declared if usages[column] == "GAUGE"}
        labels[namespace] = [column for column in declared if usages[column] == "LABEL"]
        for role in ("outbox_readonly", "outbox_repair"):
            with role_connection(url, role, name=f"postgres_exporter as {role}") as conn:
                cur = conn.execute(spec["query"])
                columns, rows = [c.name for c in cur.description], cur.fetchall()
            proof.check(f"{namespace} as {role}: columns are the declared metrics", want=declared, have=columns)
            rows_by_namespace[namespace] = [dict(zip(columns, row, strict=True)) for row in rows]
    values = rows_by_namespace["payment_outbox"][0] if len(rows_by_namespace["payment_outbox"]) == 1 else {}
    proof.check("payment_outbox: one row of the current gauges", want={
        "queue_depth": 2, "due_now": 1, "in_flight": 1, "stuck_dispatching": 1},
        have={key: values.get(key) for key in ("queue_depth", "due_now", "in_flight", "stuck_dispatching")})
    with psycopg.connect(url) as owner:  # the ledger is partitioned (issue 15): one row per partition
        ledger_leaves = sorted(row[0] for row in owner.execute(
            "SELECT relid::regclass::text FROM pg_partition_tree('payment_outbox.payment_outbox_attempts') "
            "WHERE isleaf"))
    relation_rows = rows_by_namespace["payment_outbox_relation"]
    proof.check("payment_outbox_relation: one row per leaf table: each partition of the ledger, the register, "
                "pending", want=(ledger_leaves, ["payment_outbox_idempotency_keys"], ["payment_outbox_pending"]),
                have=(sorted(f"payment_outbox.{r['partition_name']}" for r in relation_rows
                             if r["table_name"] == "payment_outbox_attempts"),
                      [r["table_name"] for r in relation_rows if r["table_name"] == "payment_outbox_idempotency_keys"],
                      [r["table_name"] for r in relation_rows if r["table_name"] == "payment_outbox_pending"]))
    proof.check("the ledger has several partitions", want=True, have=len(ledger_leaves) >= 4)
    proof.check("payment_outbox_vacuum_horizon: one row per source", want=[
        "prepared_transaction", "replication_slot", "session"],
        have=[row["horizon_source"] for row in rows_by_namespace["payment_outbox_vacuum_horizon"]])
    proof.check("the exporter's labels are the runner's", want={
        "payment_outbox": [], "payment_outbox_relation": ["table_name", "partition_name"],
        "payment_outbox_vacuum_horizon": ["horizon_source"]}, have=labels)
    proof.check("the exporter's metric names are the runner's gauge names", want={
        f"{metrics.NAMESPACE}_{name}"
        for name in (*metrics.QUEUE_GAUGES, *metrics.RELATION_GAUGES, *metrics.HORIZON_GAUGES)}, have=exported)
    for namespace, name in (("payment_outbox", "queue_gauges"), ("payment_outbox_relation", "relation_sizes"),
                            ("payment_outbox_vacuum_horizon", "vacuum_horizon")):
        runner_query = db.named_sql(name).replace("%(threshold_seconds)s", "120")
        proof.check(f"the exporter's {namespace} runs runner/sql/{name}.sql (the default threshold written in)",
                    want=_strip_comments(runner_query), have=_strip_comments(queries[namespace]["query"]))
    proof.check("the threshold in the file is the runner's default", want=["120"],
                have=re.findall(r"list_stuck_dispatching\((\d+)\)", queries["payment_outbox"]["query"]))
