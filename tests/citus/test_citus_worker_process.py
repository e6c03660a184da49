"""`outbox worker --buckets` on Citus: a process covers the buckets it is given, and only those."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg

from runner.client import Client
from tests.citus.conftest import Citus
from tests.helpers.citus_buckets import participants_per_bucket

REPO = Path(__file__).resolve().parents[2]
OUTBOX = Path(sys.executable).parent / "outbox"
PER_PARTICIPANT = 3


def test_worker_process_covers_its_buckets_only(citus: Citus, run_id: str) -> None:
    """Items in every bucket; `outbox worker --buckets 0,2,4,6`, logged in as a member of
    outbox_executor: it dispatches every item of its buckets and none of the others; SIGTERM
    then drains it (exit 0). An unknown bucket is refused with exit code 2, nothing claimed."""
    with Client.connect(citus.url("executor"), None) as executor:
        buckets = len(executor.buckets())
    with psycopg.connect(citus.owner_url) as conn:  # reads pg_dist_shard only (bucket_of)
        chosen = participants_per_bucket(conn, f"wp-{run_id}", 1, buckets)
    mine = {b for b in range(0, buckets, 2)}
    expected: set[str] = set()
    with Client.connect(citus.url("ingest"), None) as ingest:
        for bucket, (participant,) in chosen.items():
            for n in range(PER_PARTICIPANT):
                row = ingest.enqueue(f"i-{n}", participant, f"{run_id}/{bucket}/{n}", "SEPA", {"n": n})
                if bucket in mine:
                    expected.add(str(row.outbox_id))
    env = {**os.environ, "DATABASE_URL": citus.url("executor")}
    refused = subprocess.run([str(OUTBOX), "worker", "--rail", "tests.helpers.citus_buckets:dispatched_rail",
                              "--buckets", f"0,{buckets}"], env=env, cwd=REPO, capture_output=True, text=True,
                             timeout=120, check=False)
    command = [str(OUTBOX), "worker", "--rail", "tests.helpers.citus_buckets:dispatched_rail", "--buckets",
               ",".join(str(b) for b in sorted(mine)), "--batch-size", "5", "--poll-interval-seconds", "0.05",
               "--worker-id", f"wp-{run_id}"]
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    completed: set[str] = set()
    lines = []
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = json.loads(raw)
            lines.append(line)
            if line.get("event") == "completed" and line.get("outbox_id") in expected:
                completed.add(line["outbox_id"])
            if completed == expected:
                break
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=120)
    assert returncode == 0, lines[-5:]
    with psycopg.connect(citus.owner_url) as conn:
        left: dict[str, int] = dict(conn.execute(
            "SELECT participant_id, count(*) FROM payment_outbox.payment_outbox_pending "
            "WHERE participant_id = ANY(%s) GROUP BY 1", ([p for (p,) in chosen.values()],)).fetchall())
    assert left == {chosen[b][0]: PER_PARTICIPANT for b in range(buckets) if b not in mine}
    assert refused.returncode == 2 and f"no bucket [{buckets}]" in refused.stdout + refused.stderr, refused
