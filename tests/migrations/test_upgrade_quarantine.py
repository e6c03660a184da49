"""Upgrading to quarantine (tables/0013) moves nothing, and the new states work once it committed.

A database at release point 0009 (the last before the settings table, when the maximum attempt
count was a session setting) is given, through that release's own functions, an item FAILED by a
RETRYABLE completion at the maximum, a zombie FAILED by repair at the maximum, a retried item and
a fresh one. Migrated to the current package, the ledger is unchanged row for row, the FAILED
items stay FAILED and out of pending, no pending item is quarantined, and check_invariants() is
empty. Then, on the upgraded database, a RETRYABLE completion at the maximum is QUARANTINED and an
operator releases it: the enum values ALTER TYPE added are usable after the upgrade's commit.
"""

from __future__ import annotations

from typing import Any

import pytest

from runner.client import Client, Role
from runner.harness import releases
from runner.schema import migrate
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.support import ProofRecord
from tests.helpers.upgrade import migrate_to
from tests.migrations.test_migrate import empty_database  # noqa: F401  (fixture)

pytestmark = pytest.mark.proof

PAYLOAD = '{"amount": "5.00", "currency": "EUR"}'
LEDGER = ("SELECT outbox_id::text, attempt_no, state::text, worker_id, error_code, claimed_at, completed_at "
          "FROM payment_outbox.payment_outbox_attempts ORDER BY outbox_id, attempt_no")
QUEUE = "SELECT queue_depth, in_flight FROM payment_outbox.payment_outbox_queue_metrics"


def _call(url: str, role: Role, sql: str, params: tuple[Any, ...] = (), *, maximum: int | None = None
          ) -> list[tuple[Any, ...]]:
    """One statement as a runtime role; with `maximum`, release 0009's session setting for it."""
    with Client.connect(url, role, name=f"old-{role.value}") as client:
        if maximum is not None:
            client.conn.execute("SELECT set_config('payment_outbox.max_attempt_count', %s, false)", (str(maximum),))
        return client.conn.execute(sql, params).fetchall()


def _seed_with_release_0009(url: str) -> dict[str, str]:
    """Through release 0009's functions, as its runtime roles, with its session setting for the maximum."""
    enqueue = "SELECT outbox_id::text FROM payment_outbox.enqueue_payment_outbox('up-q', 'bank-q', %s, 'sepa', %s)"
    complete = ("SELECT state::text FROM payment_outbox.complete_outbox_attempt(%s, 1, 'RETRYABLE', 'TIMEOUT', "
                "NULL, NULL)")
    ids = {key: _call(url, Role.INGEST, enqueue, (key, PAYLOAD))[0][0] for key in ("k-failed", "k-zombie", "k-retry")}
    claimed = dict(_call(url, Role.EXECUTOR, "SELECT outbox_id::text, attempt_no "
                         "FROM payment_outbox.claim_outbox_batch('w-old', 10)"))
    assert set(claimed) == set(ids.values()), f"claim: have {claimed}, want {ids}"
    failed = _call(url, Role.EXECUTOR, complete, (ids["k-failed"],), maximum=2)
    assert failed == [("FAILED",)], f"release 0009 at the maximum: have {failed}, want FAILED"
    retried = _call(url, Role.EXECUTOR, complete, (ids["k-retry"],))
    assert retried == [("RETRYABLE",)], f"release 0009 below the maximum: have {retried}, want RETRYABLE"
    repaired = _call(url, Role.REPAIR, "SELECT outbox_id::text, new_state "
                     "FROM payment_outbox.repair_zombie_attempts(0)", maximum=2)
    assert repaired == [(ids["k-zombie"], "FAILED")], f"release 0009's repair: have {repaired}"
    ids["k-live"] = _call(url, Role.INGEST, enqueue, ("k-live", PAYLOAD))[0][0]
    return ids


def test_the_upgrade_moves_nothing_and_quarantine_works_after_it(
        empty_database: Database, proof: ProofRecord) -> None:  # noqa: F811
    url = empty_database.url
    migrate_to(url, releases.point("0009").root)
    ids = _seed_with_release_0009(url)
    ledger_before = _call(url, Role.AUDITOR, LEDGER)
    queue_before = _call(url, Role.READONLY, QUEUE)
    applied = migrate.migrate(url, say=lambda line: None)
    migrate_to(url)  # nothing left to apply; lets the proof act as outbox_operator, new in tables/0011
    proof.check("the upgrade applies tables/0013", want=True,
                have="tables/0013_payment_outbox_quarantine.sql" in [f.name for f in applied.files])

    proof.check("the ledger is unchanged, row for row", want=ledger_before, have=_call(url, Role.AUDITOR, LEDGER))
    proof.check("before: two items in the queue, none in flight", want=[(2, 0)], have=queue_before)
    proof.check("the queue is unchanged", want=queue_before, have=_call(url, Role.READONLY, QUEUE))
    terminal = _call(url, Role.AUDITOR, "SELECT idempotency_key, state::text "
                     "FROM payment_outbox.payment_outbox_attempts "
                     "WHERE state IN ('DISPATCHED', 'FAILED') ORDER BY idempotency_key")
    proof.check("the items FAILED before the upgrade stay FAILED",
                want=[("k-failed", "FAILED"), ("k-zombie", "FAILED")], have=terminal)
    # Empty: no QUARANTINED row without its quarantined pending row and back, no attempt budget
    # counted from anything but a RELEASED row (none: every attempt_base is 0).
    proof.check("check_invariants() is empty after the upgrade", want=[], have=api.violations(url))

    with Client.connect(url, Role.OPERATOR, name="operator") as operator:
        proof.check("nothing is listed as quarantined", want=[], have=operator.quarantined())
        operator.set_settings(2)
        try:
            with Client.connect(url, Role.EXECUTOR, name="w-new") as worker:
                claims = {str(c.outbox_id): c.attempt_no for c in worker.claim("w-new", 10)}
                done = worker.complete(ids["k-live"], claims[ids["k-live"]], "RETRYABLE", worker_id="w-new")
            proof.check("after the upgrade, RETRYABLE at the maximum is QUARANTINED", want=(2, "QUARANTINED"),
                        have=(done.attempt_no, done.state))
            release = operator.release_quarantined(ids["k-live"], reason="rail has no payment", actor="upgrade-proof")
            proof.check("and the operator releases it", want=(3, "RELEASED"), have=(release.attempt_no, release.state))
        finally:
            operator.set_settings(20)
    proof.check("check_invariants() is empty at the end", want=[], have=api.violations(url))
