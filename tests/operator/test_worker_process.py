"""`outbox worker` as a process: a real subprocess with a rail module, under enqueue load, SIGTERM
while a dispatch is in flight; it drains (that dispatch completes, nothing stays claimed), and the
history check finds nothing lost or duplicated."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import IO, Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runner.client import Client, Role
from runner.harness import history as hist
from runner.worker import Worker
from tests.conftest import Database
from tests.helpers import lock_waits, zombies
from tests.helpers.gated_rail import GATE_LOCK, rail
from tests.helpers.support import ProofRecord, role_connection
from tests.helpers.verdict import judge_history

pytestmark = pytest.mark.proof

REPO = Path(__file__).resolve().parents[2]
INGESTERS = 3
PER_INGESTER = 120
CONCURRENCY = 3


def _lines(stream: IO[str], into: queue.Queue[dict[str, Any]]) -> None:
    for raw in stream:
        if raw.strip():
            into.put(json.loads(raw))


def _next(lines: queue.Queue[dict[str, Any]], event: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """The next log line of `event`, keeping every line read on the way."""
    while True:
        line = lines.get(timeout=120)
        seen.append(line)
        if line["event"] == event:
            return line


def _ingest(url: str, history: hist.History, process: str, gate_at: int | None) -> None:
    with Client.connect(url, Role.INGEST, name=f"ingest {process}") as client:
        for n in range(PER_INGESTER):
            payload = {"n": n, "gate": n == gate_at, "fail": n % 11 == 5}
            instruction_id, key, participant_id = f"wp-{process}-{n}", f"{process}/{n}", f"bank-{n % 3}"
            value = {"instruction_id": instruction_id, "idempotency_key": key, "participant_id": participant_id,
                     "payload": payload}
            with history.operation(process, "enqueue", value) as outcome:
                row = client.enqueue(instruction_id, participant_id, key, "sepa", payload)
                outcome.value = {"outbox_id": str(row.outbox_id), "sequence_id": row.sequence_id}


def test_outbox_worker_drains_on_sigterm_with_nothing_lost(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    history = hist.History("outbox_worker_sigterm")
    env = {**os.environ, "DATABASE_URL": url}
    command = [str(zombies.OUTBOX), "worker", "--rail", "tests.helpers.gated_rail:rail", "--batch-size", "8",
               "--concurrency", str(CONCURRENCY), "--poll-interval-seconds", "0.05", "--worker-id", "wp",
               "--metrics-port", "0", "--metrics-addr", "127.0.0.1"]
    seen: list[dict[str, Any]] = []
    with role_connection(url, None, name="gate holder") as gate, \
            role_connection(url, Role.READONLY.value, name="monitor") as monitor:
        gate.execute("SELECT pg_advisory_lock(%s)", (GATE_LOCK,))
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        lines: queue.Queue[dict[str, Any]] = queue.Queue()
        reader = threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True)
        reader.start()
        try:
            port = _next(lines, "metrics_serving", seen)["port"]
            ingesters = [threading.Thread(target=_ingest, args=(url, history, f"i{n}", 61 if n == 0 else None))
                         for n in range(INGESTERS)]
            for thread in ingesters:
                thread.start()
            gated = _next(lines, "rail_gated", seen)
            lock_waits.wait_until_blocked(monitor, [gated["pid"]], gate.info.backend_pid)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
                scraped = {s.name: s.value for family in text_string_to_metric_families(response.read().decode())
                           for s in family.samples}
            process.send_signal(signal.SIGTERM)  # a dispatch is in flight: the gated rail call
            # The other two threads stop claiming and drain while the gated dispatch is still blocked.
            drained_first = {_next(lines, "worker_drained", seen)["worker_id"] for _ in range(CONCURRENCY - 1)}
            gate.execute("SELECT pg_advisory_unlock(%s)", (GATE_LOCK,))
            code = process.wait(timeout=120)
            for thread in ingesters:
                thread.join()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    reader.join(timeout=60)
    while not lines.empty():
        seen.append(lines.get())
    stderr = process.stderr.read() if process.stderr else ""
    proof.observe(log_lines=len(seen), stderr=stderr[-2000:])

    proof.check("SIGTERM ends the worker with exit 0", want=0, have=code)
    proof.check("every thread drained, then the process said why it stopped",
                want=(CONCURRENCY, {"event": "worker_stopped", "signal": "SIGTERM"}),
                have=(sum(1 for line in seen if line["event"] == "worker_drained"),
                      {k: seen[-1].get(k) for k in ("event", "signal")}))
    proof.check("the gated thread was the last to drain", want=False,
                have=any(line.get("worker_id") in drained_first for line in seen
                         if line["event"] == "completed" and line["outbox_id"] == gated["outbox_id"]))
    proof.check("the gated dispatch, in flight at the signal, was completed",
                want=["DISPATCHED"], have=[line["state"] for line in seen
                                           if line["event"] == "completed" and line["outbox_id"] == gated["outbox_id"]])
    with Client.connect(url, Role.READONLY, name="after") as client:
        proof.check("the drained worker left nothing in flight", want=[], have=client.in_flight())
    proof.check("metrics while a dispatch was in flight: claims counted, histogram fed",
                want=(True, True, True),
                have=(scraped.get("payment_outbox_worker_claimed_total", 0) >= 1,
                      "payment_outbox_worker_dispatch_latency_seconds_count" in scraped,
                      "payment_outbox_worker_stale_total" in scraped))

    # The process's acknowledged completions join the history; what it never claimed is drained here.
    for line in seen:
        if line["event"] == "completed":
            value = {k: line[k] for k in ("outbox_id", "attempt_no", "state")}
            history.end(history.invoke(line["worker_id"], "complete", value), hist.OK, value)
    with Worker.connected(url, "after-drain") as worker:
        while worker.run_once(rail, batch_size=100):
            pass
    verdict = judge_history(url, history, proof)
    proof.check("every enqueue became terminal", want=INGESTERS * PER_INGESTER, have=verdict.counts["terminal"])
    proof.check("the worker process completed some, and its completions are in the ledger",
                want=(True, 0), have=(verdict.counts.get("complete_ok", 0) > 0, verdict.counts["lost_completions"]))
    with Client.connect(url, Role.READONLY, name="invariants") as client:
        proof.check("check_invariants() is empty", want=[], have=client.check_invariants())
