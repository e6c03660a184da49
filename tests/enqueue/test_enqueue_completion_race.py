"""One idempotency key, two items? The race between an enqueue and a whole payment lifecycle.

Call A looks its key up and finds nothing. Before A inserts, another call creates an item for
the same key, a worker claims it and completes it, so it leaves pending. A's insert then meets
nothing in pending. Without the key register A would create a second item for the key, which a
worker would pay again. These proofs hold A at that point and check that it never does.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import IsolationLevel

from runner.client import Client, Role
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.support import ProofRecord, role_connection, sqlstate_of

pytestmark = pytest.mark.proof

HOLD_LOCK = 7_340_201  # advisory lock key the test holds while A waits inside its insert
HELD = "race-held-enqueue"  # application_name of the session the trigger holds
PAYLOAD = {"amount": "10.00", "currency": "EUR"}

def _install_hold_trigger(url: str) -> None:
    """Setup, as the owner: a test-only BEFORE INSERT trigger on the key register that makes the
    held session's insert wait for HOLD_LOCK. It fires after A's lookup and allocation and before
    A's key meets the register's unique index: the one place the race window can be held open
    from outside."""
    _remove_hold_trigger(url)
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute("CREATE SCHEMA outbox_race_test")
        owner.execute(f"""
            CREATE FUNCTION outbox_race_test.hold_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF pg_catalog.current_setting('application_name') = '{HELD}' THEN
                    PERFORM pg_catalog.pg_advisory_lock({HOLD_LOCK});
                    PERFORM pg_catalog.pg_advisory_unlock({HOLD_LOCK});
                END IF;
                RETURN NEW;
            END;
            $$""")
        owner.execute("""
            CREATE TRIGGER outbox_race_test_hold BEFORE INSERT ON payment_outbox.payment_outbox_idempotency_keys
            FOR EACH ROW EXECUTE FUNCTION outbox_race_test.hold_insert()""")


def _remove_hold_trigger(url: str) -> None:
    """Setup, as the owner: the trigger must not outlive the test."""
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute("DROP TRIGGER IF EXISTS outbox_race_test_hold ON payment_outbox.payment_outbox_idempotency_keys")
        owner.execute("DROP SCHEMA IF EXISTS outbox_race_test CASCADE")


def _pay_out(url: str, instruction_id: str, participant_id: str, key: str) -> str:
    """Another caller's whole payment: enqueue, claim, complete DISPATCHED. Returns its outbox_id."""
    with Client.connect(url, Role.INGEST, name="race-other-enqueue") as client:
        outbox_id = client.enqueue(instruction_id, participant_id, key, "sepa", PAYLOAD).outbox_id
    with Client.connect(url, Role.EXECUTOR, name="race-worker") as client:
        claimed = client.claim("race-worker", 10)
        assert [row.outbox_id for row in claimed] == [outbox_id], f"claim: have {claimed!r}, want only {outbox_id}"
        client.complete(outbox_id, claimed[0].attempt_no, "DISPATCHED", worker_id="race-worker")
    return str(outbox_id)


def _items_of_key(url: str, instruction_id: str, key: str) -> dict[str, object]:
    with role_connection(url, "outbox_auditor", name="race-audit") as conn:
        terminal = conn.execute(
            "SELECT DISTINCT outbox_id::text FROM payment_outbox.payment_outbox_attempts"
            " WHERE instruction_id = %s AND idempotency_key = %s", (instruction_id, key)).fetchall()
    return {"items_in_ledger": sorted(row[0] for row in terminal), "queue_depth": api.queue(url)["queue_depth"],
            "violations": api.violations(url)}


def _wait_until_waiting_on_advisory_lock(url: str, pid: int, timeout: float = 30.0) -> None:
    """Lock-wait detection: returns once backend `pid` waits for HOLD_LOCK."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as monitor:
        while time.monotonic() < deadline:
            waiting = monitor.execute(
                "SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'advisory' AND NOT granted"
                " AND objid = %s", (pid, HOLD_LOCK)).fetchone()[0]
            if waiting:
                return
            time.sleep(0.01)  # polling the lock table, not waiting for time to pass
    raise AssertionError(f"backend {pid} never waited for advisory lock {HOLD_LOCK} within {timeout}s")


def test_read_committed_enqueue_held_while_the_key_is_paid_out(clean_database: Database, proof: ProofRecord) -> None:
    """A (participant held-bank) is held after its lookup missed; the key is meanwhile enqueued by
    another participant, dispatched and completed. A must answer PO001 (the key belongs to another
    participant's item) and leave nothing behind: no second item, no sequence id burnt."""
    url = clean_database.url
    instruction_id, key = "race-rc-1", "race-rc-key-1"
    _install_hold_trigger(url)
    try:
        with psycopg.connect(url, autocommit=True) as holder:  # setup: holds the advisory lock A waits on
            holder.execute("SELECT pg_advisory_lock(%s)", (HOLD_LOCK,))
            with Client.connect(url, Role.INGEST, name=HELD) as held, \
                    ThreadPoolExecutor(max_workers=1) as pool:
                held_pid = held.conn.info.backend_pid
                outcome = pool.submit(
                    sqlstate_of, lambda: held.enqueue(instruction_id, "held-bank", key, "sepa", PAYLOAD))
                _wait_until_waiting_on_advisory_lock(url, held_pid)
                paid = _pay_out(url, instruction_id, "other-bank", key)
                holder.execute("SELECT pg_advisory_unlock(%s)", (HOLD_LOCK,))
                held_sqlstate = outcome.result(timeout=60)
    finally:
        _remove_hold_trigger(url)
    violations_after = [row[0] for row in api.violations(url)]
    seen = _items_of_key(url, instruction_id, key)
    proof.observe(held_sqlstate=held_sqlstate, paid_item=paid, **seen)
    proof.check("the held call is refused as a reuse of the key (another participant's item)",
                want="PO001", have=held_sqlstate)
    proof.check("the key has exactly one item, the one paid out", want=[paid], have=seen["items_in_ledger"])
    proof.check("nothing left in pending", want=0, have=seen["queue_depth"])
    proof.check("check_invariants() is empty (no second item, no burnt id)", want=[], have=violations_after)


@pytest.mark.parametrize("other_participant", ["same-bank", "other-bank"])
def test_repeatable_read_enqueue_with_a_snapshot_older_than_the_payment(
        clean_database: Database, proof: ProofRecord, other_participant: str) -> None:
    """A's transaction took its snapshot before the key's item was created, paid and completed.
    A cannot see that item, so it must fail with 40001 (writing nothing); retried, it answers with
    the item (same arguments) or PO001 (another participant)."""
    url = clean_database.url
    instruction_id, key = f"race-rr-{other_participant}", f"race-rr-key-{other_participant}"
    with role_connection(url, "outbox_ingest", name="race-rr-enqueue", autocommit=False) as late:
        late.isolation_level = IsolationLevel.REPEATABLE_READ
        late.execute("SELECT 1")  # the snapshot is taken here, before the payment below
        paid = _pay_out(url, instruction_id, other_participant, key)
        first = sqlstate_of(lambda: Client(late).enqueue(instruction_id, "same-bank", key, "sepa", PAYLOAD))
        late.rollback()
        retried_state = None
        try:
            row = Client(late).enqueue(instruction_id, "same-bank", key, "sepa", PAYLOAD)
            late.commit()
            retried = (str(row.outbox_id), row.state)
        except psycopg.Error as exc:
            late.rollback()
            retried, retried_state = None, exc.sqlstate
    seen = _items_of_key(url, instruction_id, key)
    proof.observe(first_sqlstate=first, retried=retried, retried_sqlstate=retried_state, paid_item=paid, **seen)
    proof.check("the call with the old snapshot fails with serialization_failure", want="40001", have=first)
    if other_participant == "same-bank":
        proof.check("the retry answers with the paid item, DISPATCHED", want=(paid, "DISPATCHED"), have=retried)
    else:
        proof.check("the retry is refused as a reuse of the key", want="PO001", have=retried_state)
    proof.check("the key has exactly one item, the one paid out", want=[paid], have=seen["items_in_ledger"])
    proof.check("nothing left in pending", want=0, have=seen["queue_depth"])
    proof.check("check_invariants() is empty", want=[], have=seen["violations"])
