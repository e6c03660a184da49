"""A payment file: 50,000 enqueues in one transaction commit on a server with default settings."""

from __future__ import annotations

import time

import pytest

from runner.client import Client, Role
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof

CALLS = 50_000


def test_fifty_thousand_enqueues_in_one_transaction(clean_database: Database, proof: ProofRecord) -> None:
    """One participant, the worst case: every call takes the same allocator row. Nothing a call
    takes may pile up until commit beyond what the lock table holds (64 x 100 slots here)."""
    with Client.connect(clean_database.url, Role.INGEST, name="bulk file", autocommit=False) as client:
        conn = client.conn
        settings: dict[str, str] = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('max_locks_per_transaction', 'max_connections')"
        ).fetchall())
        started = time.monotonic()
        sequence_ids = [row.sequence_id for row in client.enqueue_many(
            (f"bulk-{n}", "bulk-bank", f"file-7/{n}", "sepa", {"line": n}) for n in range(CALLS))]
        locks_held = conn.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()").fetchone()[0]
        conn.commit()
        elapsed = time.monotonic() - started
    proof.observe(settings=settings, seconds=round(elapsed, 1), locks_held_before_commit=locks_held)
    if settings["max_locks_per_transaction"] != "64" or settings["max_connections"] != "100":
        proof.observe(note="server is not at default lock settings; the bound below is still asserted")
    misplaced = [(n, got) for n, got in enumerate(sequence_ids, start=1) if got != n]
    proof.check("every call got the next sequence id, 1..N in call order",
                want={"calls": CALLS, "misplaced": []}, have={"calls": len(sequence_ids), "misplaced": misplaced[:10]})
    proof.check("locks held at commit stay far below the lock table (not one per call)", want=True,
                have=locks_held < 100)
    proof.check("all items committed", want=CALLS, have=api.queue(clean_database.url)["queue_depth"])
    proof.check("check_invariants() is empty", want=[], have=api.violations(clean_database.url))
