"""Pausing a rail: its items cost a claim nothing (pg_stat counters), resume keeps their order, the
gauges show it, and `outbox rail` drives it."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import psycopg
import pytest

from runner.client import Client, Role
from runner.operator import metrics
from tests.conftest import Database
from tests.helpers import zombies
from tests.helpers.support import ProofRecord, role_connection

pytestmark = pytest.mark.proof

PAUSED_ITEMS = 20_000
# Reads of the claim index and heap fetches of pending by one claim, as the session's own statistics
# count them (pg_stat_get_xact_*: this transaction's counts, before they are reported).
COUNTERS = """
SELECT
    pg_stat_get_xact_tuples_returned('payment_outbox.payment_outbox_pending_next_attempt_at_claimable_idx'::regclass),
    pg_stat_get_xact_tuples_fetched('payment_outbox.payment_outbox_pending'::regclass),
    pg_stat_get_xact_blocks_fetched('payment_outbox.payment_outbox_pending_next_attempt_at_claimable_idx'::regclass)
"""


def _enqueue_file(url: str, rail: str, count: int) -> None:
    items = [{"instruction_id": "cost", "participant_id": f"p-{rail}", "idempotency_key": f"{rail}-{n}",
              "rail_type": rail, "payload": {"n": n}} for n in range(count)]
    with role_connection(url, "outbox_ingest") as conn:
        conn.execute("SELECT count(*) FROM payment_outbox.enqueue_payment_outbox_batch(%s::jsonb)", [json.dumps(items)])


def _claim_cost(url: str) -> tuple[list[str], tuple[int, int, int]]:
    """One claim of 10 in a transaction of its own, and the counters it moved."""
    with role_connection(url, "outbox_executor", autocommit=False) as conn:
        before = conn.execute(COUNTERS).fetchone()
        keys = [r[0] for r in conn.execute("SELECT idempotency_key FROM payment_outbox.claim_outbox_batch('w', 10)")]
        after = conn.execute(COUNTERS).fetchone()
        conn.rollback()
    assert before is not None and after is not None
    return keys, (after[0] - before[0], after[1] - before[1], after[2] - before[2])


def test_a_paused_rails_items_cost_a_claim_nothing(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    _enqueue_file(url, "slow", PAUSED_ITEMS)  # due first: ahead of every other item in the index
    _enqueue_file(url, "fast", 5)
    _, running = _claim_cost(url)
    with Client.connect(url, Role.OPERATOR) as client:
        change = client.pause_rail("slow", "rail down", "test")
    proof.check("the pause flagged every item of the rail", want=PAUSED_ITEMS, have=change.items_changed)
    # The pause's UPDATE leaves the paused rows' old entries in the claim index until vacuum removes
    # them (autovacuum on pending starts at 1,000 dead rows, tables/0008). The first claim after the
    # pause reads them all and marks them dead; later claims skip the entries but still read the
    # leaf pages that hold them, until vacuum: the VACUUM autovacuum would run, not waited for.
    _, just_paused = _claim_cost(url)
    _, before_vacuum = _claim_cost(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM payment_outbox.payment_outbox_pending")
    keys, paused = _claim_cost(url)
    proof.observe(counters_before_pause=running, counters_just_paused=just_paused,
                  counters_before_vacuum=before_vacuum, counters_paused=paused)
    proof.check("the claim takes the five items of the running rail", want=sorted(f"fast-{n}" for n in range(5)),
                have=sorted(keys))
    proof.check("claim index entries read: the five claimed, none of the paused rail's", want=5, have=paused[0])
    proof.check("heap rows of pending fetched: at most the claimed ones, twice (the lock and the update)",
                want=True, have=paused[1] <= 10)
    proof.check("claim index blocks read: a handful, not the paused rail's", want=True, have=paused[2] <= 5)
    with role_connection(url, "outbox_readonly") as conn:
        gauges = metrics.read_queue_gauges(conn, 120)
    with Client.connect(url, Role.READONLY) as client:
        rails = client.paused_rails()
    proof.check("the queue gauges (outbox metrics, the exporter): one paused rail, its items due",
                want=(1, PAUSED_ITEMS), have=(gauges.paused_rails, gauges.paused_due))
    proof.check("payment_outbox_paused_rails names it", want=[("slow", "rail down", "test", PAUSED_ITEMS)],
                have=[(r.rail_type, r.reason, r.actor, r.due_items) for r in rails])


def test_resume_gives_the_items_back_in_their_order(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    with Client.connect(url, Role.INGEST) as client:
        for n in range(6):  # one transaction each: due times strictly increase
            client.enqueue("order", "p-order", f"k{n}", "slow" if n % 2 == 0 else "fast", {"n": n})
    with Client.connect(url, Role.OPERATOR) as client:
        client.pause_rail("slow", "rail down", "test")
    with Client.connect(url, Role.EXECUTOR) as client:
        first = [c.idempotency_key for c in client.claim("w1", 10)]
    with Client.connect(url, Role.OPERATOR) as client:
        resumed = client.resume_rail("slow", "test")
    with Client.connect(url, Role.EXECUTOR) as client:
        after = [c.idempotency_key for c in client.claim("w2", 2)] + [c.idempotency_key for c in client.claim("w3", 2)]
    proof.check("paused: only the running rail's items", want=["k1", "k3", "k5"], have=first)
    proof.check("resume found the three paused items", want=(True, 3), have=(resumed.was_paused, resumed.items_changed))
    proof.check("resumed: claimed in their original due order", want=["k0", "k2", "k4"], have=after)


def _outbox(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([str(zombies.OUTBOX), "rail", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_outbox_rail_pause_list_resume(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    rail = f"rail-{uuid.uuid4().hex[:8]}"
    paused = _outbox(url, "pause", rail, "--reason", "bank outage", "--actor", "alice")
    listed = _outbox(url, "list", "--json")
    resumed = _outbox(url, "resume", rail, "--actor", "bob")
    empty = _outbox(url, "list")
    bad = _outbox(url, "pause", rail, "--reason", " ", "--actor", "alice")
    proof.observe(paused=paused.stdout, listed=listed.stdout, resumed=resumed.stdout, bad=bad.stderr)
    proof.check("exit codes", want=(0, 0, 0, 0, 1),
                have=(paused.returncode, listed.returncode, resumed.returncode, empty.returncode, bad.returncode))
    proof.check("pause says what it did", want={"event": "rail_paused", "rail_type": rail, "paused": True,
                                                "was_paused": False, "items_changed": 0},
                have=json.loads(paused.stdout))
    proof.check("list shows the rail, reason and actor", want=[(rail, "bank outage", "alice")],
                have=[(r["rail_type"], r["reason"], r["actor"]) for r in map(json.loads, listed.stdout.splitlines())])
    proof.check("resume says it was paused", want=(False, True),
                have=(json.loads(resumed.stdout)["paused"], json.loads(resumed.stdout)["was_paused"]))
    proof.check("nothing paused afterwards", want="no rail is paused\n", have=empty.stdout)
    proof.check("a blank reason names PO010", want=True, have="SQLSTATE PO010" in bad.stderr)
    with Client.connect(url, Role.AUDITOR) as client:
        history = [(h.request, h.actor, h.reason) for h in client.rail_history()]
    proof.check("the history holds both calls, not the refused one",
                want=[("PAUSE", "alice", "bank outage"), ("RESUME", "bob", None)], have=history)
