"""`outbox show`: an item's life as a timeline and as JSON lines, by id or by key, as readonly or auditor."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from runner.client import Client, Role
from runner.worker import RailOutcome, Worker
from tests.conftest import Database
from tests.helpers import zombies
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof


def outbox(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([str(zombies.OUTBOX), *args], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_outbox_show_tells_an_items_life(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        item = client.enqueue("show-i1", "show-p", "show-k1", "sepa", {"secret": "do-not-print"})
    with Worker.connected(url, "show-worker") as worker:
        worker.run_once(lambda claimed: RailOutcome("RETRYABLE", error_code="TIMEOUT", error_message="rail slow"))

    by_id = outbox(url, "show", str(item.outbox_id))
    proof.check("outbox show ID exits 0", want=(0, ""), have=(by_id.returncode, by_id.stderr))
    lines = by_id.stdout.splitlines()
    proof.check("the timeline names the item, then one line per change, then where it stands",
                want=[True, True, True, True, True],
                have=[str(item.outbox_id) in lines[0] and "show-k1" in lines[0],
                      lines[2].split()[1:] == ["#0", "ENQUEUED"],
                      lines[3].split()[1:] == ["#1", "DISPATCHING", "worker", "show-worker"],
                      lines[4].split()[1:5] == ["#2", "RETRYABLE", "worker", "show-worker"]
                      and lines[4].endswith("error TIMEOUT: rail slow") and " ms  " in lines[4],
                      lines[5].startswith("now: pending, due again")])
    proof.check("no payload in the timeline", want=False, have="do-not-print" in by_id.stdout)

    by_key = outbox(url, "show", "show-i1", "show-k1", "--json", "--role", "outbox_auditor")
    proof.check("outbox show INSTRUCTION KEY --json exits 0", want=(0, ""), have=(by_key.returncode, by_key.stderr))
    changes = [json.loads(line) for line in by_key.stdout.splitlines()]
    proof.check("one JSON object per change, in order",
                want=[(0, "ENQUEUED"), (1, "DISPATCHING"), (2, "RETRYABLE")],
                have=[(c["attempt_no"], c["state"]) for c in changes])
    proof.check("each names its item, without payload", want=({str(item.outbox_id)}, False),
                have=({c["outbox_id"] for c in changes}, any("payload" in c for c in changes)))

    unknown = outbox(url, "show", "show-i1", "no-such-key")
    proof.check("an unknown key exits 1 naming PO003", want=(1, True),
                have=(unknown.returncode, "SQLSTATE PO003" in unknown.stderr))
    malformed = outbox(url, "show", "not-a-uuid")
    proof.check("a malformed id is a usage error naming it, before any query", want=(2, True, False),
                have=(malformed.returncode, "'not-a-uuid' is not an outbox_id" in malformed.stderr,
                      "Traceback" in malformed.stderr))
