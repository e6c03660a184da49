"""Quarantine (issue 16, item 1): an item whose retries are exhausted (a RETRYABLE completion at the
maximum attempt count, single and batch) is QUARANTINED, never FAILED: kept in pending, never
claimed, counted and listed; `outbox quarantine list|release|fail` act on it as outbox_operator,
with actor and reason kept in the ledger and shown by `outbox show`. The zombie case is in
tests/repair/test_zombie_repair_companions.py."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from uuid import UUID

import pytest

from runner.client import AttemptOutcome, Client, Role
from runner.worker import RailOutcome, Worker
from tests.conftest import Database
from tests.helpers import api, zombies
from tests.helpers.support import ProofRecord, sqlstate_of

pytestmark = pytest.mark.proof


def outbox(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([str(zombies.OUTBOX), *args], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.fixture
def maximum_two(clean_database: Database) -> Iterator[Database]:
    """A maximum attempt count of 2: the first RETRYABLE completion of an item reaches it. The
    default again afterwards."""
    with Client.connect(clean_database.url, Role.OPERATOR, name="settings") as client:
        client.set_settings(2)
    yield clean_database
    with Client.connect(clean_database.url, Role.OPERATOR, name="settings") as client:
        client.set_settings(20)


def enqueue(url: str, *keys: str) -> list[str]:
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        return [str(client.enqueue("q-instr", "q-bank", key, "sepa", {"key": key}).outbox_id) for key in keys]


def quarantined(url: str) -> list[tuple[str, int, bool]]:
    """As outbox_operator: (key, attempt_count, has a reason) of each quarantined item."""
    with Client.connect(url, Role.OPERATOR, name="operator") as client:
        return sorted((q.idempotency_key, q.attempt_count, bool(q.quarantined_at and q.quarantine_reason))
                      for q in client.quarantined())


def test_retryable_at_the_maximum_is_quarantined_never_failed(maximum_two: Database, proof: ProofRecord) -> None:
    url = maximum_two.url
    single, batched = enqueue(url, "q-single", "q-batch")
    with Client.connect(url, Role.EXECUTOR, name="w-q") as client:
        claimed = {str(c.outbox_id): c.attempt_no for c in client.claim("w-q", 10)}
        one = client.complete(single, claimed[single], "RETRYABLE", error_code="TIMEOUT", worker_id="w-q")
        batch = client.complete_batch("w-q", [AttemptOutcome(UUID(batched), claimed[batched], "RETRYABLE",
                                                             error_code="TIMEOUT")])
    proof.check("the single completion answers QUARANTINED", want=(2, "QUARANTINED"), have=(one.attempt_no, one.state))
    proof.check("the batch completion answers QUARANTINED", want=[(2, "QUARANTINED", "completed")],
                have=[(r.attempt_no, r.state, r.outcome) for r in batch])
    proof.check("no FAILED in the ledger", want=[], have=[r for r in api.ledger(url) if r[2] == "FAILED"])
    proof.check("both are quarantined, with when and why",
                want=[("q-batch", 2, True), ("q-single", 2, True)], have=quarantined(url))
    proof.check("no longer in flight", want=[], have=api.stuck(url, 0))
    with Client.connect(url, Role.EXECUTOR, name="w-other") as client:
        proof.check("a claim does not reach them", want=[], have=client.claim("w-other", 10))
    proof.check("the queue: depth 2, none due, none in flight", want={"queue_depth": 2, "due_now": 0, "in_flight": 0},
                have=zombies.queue(url))
    gauges = outbox(url, "metrics")
    proof.check("outbox metrics: the quarantined gauge says 2", want=(0, True),
                have=(gauges.returncode, "payment_outbox_quarantined 2.0" in gauges.stdout.splitlines()))
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_the_reference_worker_reports_quarantined(maximum_two: Database, proof: ProofRecord) -> None:
    url = maximum_two.url
    enqueue(url, "q-worker")
    with Worker.connected(url, "w-ref") as worker:
        done = worker.run_once(lambda claimed: RailOutcome("RETRYABLE", error_code="TIMEOUT"))
    proof.check("the worker's completion says QUARANTINED", want=[("QUARANTINED", 2)],
                have=[(c.state, c.attempt_no) for c in done])


def test_outbox_quarantine_list_release_and_fail(maximum_two: Database, proof: ProofRecord) -> None:
    url = maximum_two.url
    released, failed = enqueue(url, "q-release", "q-fail")
    with Client.connect(url, Role.EXECUTOR, name="w-q") as client:
        for claim in client.claim("w-q", 10):
            client.complete(claim.outbox_id, claim.attempt_no, "RETRYABLE", error_code="TIMEOUT", worker_id="w-q")

    listed = outbox(url, "quarantine", "list")
    lines = listed.stdout.splitlines()
    proof.check("outbox quarantine list exits 0: a header, then one line per item with key and why",
                want=(0, "", 3, True, True),
                have=(listed.returncode, listed.stderr, len(lines),
                      lines[0].split()[:3] == ["outbox_id", "instruction_id", "idempotency_key"],
                      all(text in listed.stdout
                          for text in (released, failed, "q-release", "q-fail", "retries exhausted"))))
    as_json = outbox(url, "quarantine", "list", "--json")
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    proof.check("--json: one object per item, with when and why, without payload",
                want=(0, {released, failed}, True, False),
                have=(as_json.returncode, {r["outbox_id"] for r in rows},
                      all(r["quarantined_at"] and r["quarantine_reason"].startswith("retries exhausted") for r in rows),
                      any("payload" in r for r in rows)))

    release = outbox(url, "quarantine", "release", released, "--reason", "rail has no payment for the key",
                     "--actor", "alice")
    proof.check("outbox quarantine release exits 0 with the RELEASED row", want=(0, f"{released}: attempt 3 RELEASED"),
                have=(release.returncode, release.stdout.strip()))
    again = outbox(url, "quarantine", "release", released, "--reason", "again", "--actor", "bob")
    proof.check("releasing it again exits 1 naming PO030", want=(1, True),
                have=(again.returncode, "SQLSTATE PO030" in again.stderr))
    fail = outbox(url, "quarantine", "fail", failed, "--reason", "rail rejected it", "--actor", "carol")
    proof.check("outbox quarantine fail exits 0 with the FAILED row", want=(0, f"{failed}: attempt 3 FAILED"),
                have=(fail.returncode, fail.stdout.strip()))
    blank = outbox(url, "quarantine", "fail", released, "--reason", " ", "--actor", "carol")
    proof.check("a blank reason exits 1 naming PO010", want=(1, True),
                have=(blank.returncode, "SQLSTATE PO010" in blank.stderr))
    malformed = outbox(url, "quarantine", "release", "not-a-uuid", "--reason", "r", "--actor", "a")
    proof.check("a malformed id is a usage error", want=(2, True),
                have=(malformed.returncode, "'not-a-uuid' is not an outbox_id" in malformed.stderr))
    proof.check("outbox quarantine list is empty now", want="no quarantined items",
                have=outbox(url, "quarantine", "list").stdout.strip())

    with Client.connect(url, Role.EXECUTOR, name="w-again") as client:
        claims = client.claim("w-again", 10)
        proof.check("the released item is claimed at once, attempt_no still increasing",
                    want=[(released, 4)], have=[(str(c.outbox_id), c.attempt_no) for c in claims])
        client.complete(released, 4, "DISPATCHED", worker_id="w-again")

    shown = outbox(url, "show", released)
    timeline = shown.stdout.splitlines()
    proof.check("outbox show: QUARANTINED with why, RELEASED with who and why",
                want=(0, True, True),
                have=(shown.returncode,
                      any("QUARANTINED" in line and "reason: retries exhausted" in line for line in timeline),
                      any("RELEASED" in line and "by alice  reason: rail has no payment for the key" in line
                          for line in timeline)))
    shown_failed = outbox(url, "show", failed, "--json")
    last = json.loads(shown_failed.stdout.splitlines()[-1])
    proof.check("outbox show --json: the failed item ends FAILED by carol, with her reason",
                want=("FAILED", 3, "carol", "rail rejected it"),
                have=(last["state"], last["attempt_no"], last["actor"], last["reason"]))
    proof.check("the ledger of each", want={released: ["DISPATCHING", "QUARANTINED", "RELEASED", "DISPATCHING",
                                                      "DISPATCHED"],
                                            failed: ["DISPATCHING", "QUARANTINED", "FAILED"]},
                have={oid: [r.state for r in api.ledger_rows(url, oid)] for oid in (released, failed)})
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_only_the_operator_may_decide(maximum_two: Database, proof: ProofRecord) -> None:
    url = maximum_two.url
    (item,) = enqueue(url, "q-roles")
    with Client.connect(url, Role.EXECUTOR, name="w-q") as client:
        (claim,) = client.claim("w-q", 1)
        client.complete(item, claim.attempt_no, "RETRYABLE", worker_id="w-q")
    for role in (Role.INGEST, Role.EXECUTOR, Role.REPAIR, Role.READONLY, Role.AUDITOR):
        def release(role: Role = role) -> None:
            with Client.connect(url, role, name="not-operator") as client:
                client.release_quarantined(item, reason="r", actor="a")
        proof.check(f"{role} cannot release", want="42501", have=sqlstate_of(release))
    with Client.connect(url, Role.READONLY, name="monitor") as client:
        proof.check("outbox_readonly may list", want=[item], have=[str(q.outbox_id) for q in client.quarantined()])


@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
def test_a_decision_in_an_old_snapshot_fails_with_40001(maximum_two: Database, proof: ProofRecord,
                                                        level: str) -> None:
    """Another operator releases the item after this transaction's snapshot: failing it there is
    40001 and writes nothing (at READ COMMITTED it would be PO030, after the row lock)."""
    url = maximum_two.url
    (item,) = enqueue(url, "q-snapshot")
    with Client.connect(url, Role.EXECUTOR, name="w-q") as client:
        (claim,) = client.claim("w-q", 1)
        client.complete(item, claim.attempt_no, "RETRYABLE", worker_id="w-q")
    with Client.connect(url, Role.OPERATOR, name=f"snapshot-{level}", autocommit=False) as late:
        late.conn.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")
        late.conn.execute("SELECT 1")
        with Client.connect(url, Role.OPERATOR, name="first") as first:
            first.release_quarantined(item, reason="rail has no payment", actor="alice")

        def fail() -> None:
            late.fail_quarantined(item, reason="rail rejected it", actor="bob")
        proof.check(f"{level}: failing an item released since the snapshot", want="40001", have=sqlstate_of(fail))
        late.conn.rollback()
    proof.check("the ledger holds the release only", want=["DISPATCHING", "QUARANTINED", "RELEASED"],
                have=[r.state for r in api.ledger_rows(url, item)])
