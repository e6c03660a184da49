"""An item whose creation month has no ledger partition (issue 25, item 1).

Such an item cannot be claimed (the ledger has no DEFAULT partition): it must not stop the claims
of every other item, the operator must be able to recreate its month (a retired month included)
with ensure_attempt_partitions(), and then it dispatches. No item is created in a month that has
no partition, nor in one retention is retiring: the two orders of an enqueue racing the start of
a retirement are run with pg_blocking_pids(), not with sleeps.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from runner.client import Client, Role
from runner.schema import retention
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.lock_waits import wait_until_blocked
from tests.helpers.partitions import backdated_item, dispatch_all, month_partition, partitions, table_exists
from tests.helpers.support import ProofRecord, role_connection, sqlstate_of

pytestmark = pytest.mark.proof

BEGIN_RETIREMENT = "SELECT * FROM payment_outbox._begin_partition_retirement(%s)"
CURRENT_PARTITION = ("SELECT r.partition_name FROM payment_outbox.payment_outbox_attempt_partitions AS r "
                     "WHERE r.state = 'attached' AND r.range_from <= now() AND r.range_to > now()")


def claim_ids(url: str, batch: int = 10) -> set[str]:
    with Client.connect(url, Role.EXECUTOR, name="claimer") as client:
        return {str(item.outbox_id) for item in client.claim("w-missing", batch)}


def two_others(url: str, prefix: str) -> set[str]:
    return {str(api.enqueue_once(url, f"instr-{prefix}-{rail}", "bank-o", f"{prefix}-{rail}",
                                 rail_type=rail)["outbox_id"]) for rail in ("sepa", "swift")}


def claims_and_recovery(url: str, proof: ProofRecord, stuck: dict[str, Any], prefix: str) -> list[str]:
    others = two_others(url, prefix)
    claimed: set[str] = set()
    code = sqlstate_of(lambda: claimed.update(claim_ids(url)))
    proof.check("claims of other items succeed beside the item without a partition",
                want=(None, others), have=(code, claimed))
    proof.check("check_invariants() names the stuck item", want=[("ledger_partition_missing", str(stuck["outbox_id"]))],
                have=[(v[0], str(v[1])) for v in api.violations(url) if v[1] is not None])
    with Client.connect(url, Role.OPERATOR, name="operator") as client:
        created = [p.partition_name for p in client.ensure_partitions("3 months")]
    proof.check("the stuck item is claimed once its month is recreated", want={str(stuck["outbox_id"])},
                have=claim_ids(url))
    return created


def test_an_item_in_a_month_never_partitioned(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    stuck = backdated_item(url, "mp-2019-06", "2019-06-10 12:00+00")
    created = claims_and_recovery(url, proof, stuck, "mp-a")
    proof.check("ensure_attempt_partitions() created the stuck item's month", want=["payment_outbox_attempts_2019_06"],
                have=created)


def test_an_item_in_a_retired_month(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    name = month_partition(url, 2020, 7)
    backdated_item(url, "mp-jul-done", "2020-07-10 12:00+00")
    dispatch_all(url)
    code = retention.run(url, retention.Options(window="30 days"), emit=lambda line: None)
    proof.check("July 2020 is retired", want=(0, "retired"), have=(code, partitions(url)[name]))
    # The damage: an item created in the retired month (as a transaction open across the
    # retirement would have written it before this fix).
    stuck = backdated_item(url, "mp-jul-late", "2020-07-20 12:00+00")
    created = claims_and_recovery(url, proof, stuck, "mp-b")
    proof.check("the retired month is recreated under a new name; the retired one stays recorded",
                want=([f"{name}_2"], "retired", "attached"),
                have=(created, partitions(url)[name], partitions(url).get(f"{name}_2")))
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        proof.check("a repeat of the retired key is still PO034", want="PO034", have=sqlstate_of(
            lambda: client.enqueue("instr-mp-jul-done", "bank-r", "mp-jul-done", "sepa", {"key": "mp-jul-done"})))


def written(url: str) -> tuple[Any, ...] | None:
    with psycopg.connect(url) as owner:
        return owner.execute("SELECT (SELECT count(*) FROM payment_outbox.payment_outbox_idempotency_keys), "
                             "(SELECT count(*) FROM payment_outbox.payment_outbox_pending)").fetchone()


def test_no_item_is_created_in_a_month_without_a_partition(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    api.enqueue_once(url, "instr-mp-before", "bank-o", "mp-before")
    with psycopg.connect(url, autocommit=True) as owner:  # setup: the damage, this month's partition gone
        name = owner.execute(CURRENT_PARTITION).fetchone()[0]
        dispatch_all(url)
        owner.execute(f"ALTER TABLE payment_outbox.payment_outbox_attempts DETACH PARTITION payment_outbox.{name}")
        owner.execute(f"DROP TABLE payment_outbox.{name}")
        owner.execute("DELETE FROM payment_outbox.payment_outbox_attempt_partitions WHERE partition_name = %s", (name,))
    before = written(url)
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        single = sqlstate_of(lambda: client.enqueue("instr-mp-new", "bank-o", "mp-new", "sepa", {"key": "mp-new"}))
        batch = sqlstate_of(lambda: client.conn.execute(
            "SELECT * FROM payment_outbox.enqueue_payment_outbox_batch(%s::jsonb)",
            ('[{"instruction_id": "instr-mp-new-b", "participant_id": "bank-o", "idempotency_key": "mp-new-b", '
             '"rail_type": "sepa", "payload": {"k": 1}}]',)))
    proof.check("enqueue and the batch refuse a new key this month has no partition for (PO035), writing nothing",
                want=("PO035", "PO035", before), have=(single, batch, written(url)))
    with Client.connect(url, Role.OPERATOR, name="operator") as client:
        created = [p.partition_name for p in client.ensure_partitions("3 months")]
    proof.check("ensure_attempt_partitions() recreates this month", want=True, have=name in created)
    item = api.enqueue_once(url, "instr-mp-new", "bank-o", "mp-new")
    proof.check("then the key enqueues and dispatches", want={str(item["outbox_id"])}, have=claim_ids(url))


def test_an_enqueue_racing_the_start_of_a_retirement(clean_database: Database, proof: ProofRecord) -> None:
    """Retention is called on this month's partition directly (the owner's private step skips the
    window, which a test cannot wait for): the two orders of an enqueue and the start."""
    url = clean_database.url
    with psycopg.connect(url, autocommit=True) as monitor:
        name = monitor.execute(CURRENT_PARTITION).fetchone()[0]
    outcome: dict[str, Any] = {}
    # Order 1: an enqueue in an open transaction, then the start of the retirement: it waits for
    # the enqueue's commit and then sees its item.
    with role_connection(url, "outbox_ingest", name="ingest", autocommit=False) as ingest, \
            psycopg.connect(url, autocommit=True) as owner, psycopg.connect(url, autocommit=True) as monitor:
        item = api.enqueue(ingest, "instr-mp-race-1", "bank-o", "mp-race-1")

        def begin() -> None:
            outcome["first"] = sqlstate_of(lambda: owner.execute(BEGIN_RETIREMENT, (name,)))
        starting = threading.Thread(target=begin)
        starting.start()
        blocked = sqlstate_of(lambda: wait_until_blocked(monitor, [owner.info.backend_pid],
                                                         ingest.info.backend_pid, timeout=10))
        ingest.commit()
        starting.join(60)
    proof.check("the start waits for the open enqueue, then refuses the partition (PO033)",
                want=(None, "PO033", "attached"), have=(blocked, outcome.get("first"), partitions(url)[name]))
    # Order 2: the start commits first: an enqueue after it is refused and writes nothing.
    dispatch_all(url)
    with psycopg.connect(url, autocommit=True) as owner:
        outcome["second"] = sqlstate_of(lambda: owner.execute(BEGIN_RETIREMENT, (name,)))
    before = written(url)
    refused = sqlstate_of(lambda: api.enqueue_once(url, "instr-mp-race-2", "bank-o", "mp-race-2"))
    proof.check("after the start, a new key in the retiring month is PO035 and writes nothing",
                want=(None, "detaching", "PO035", before),
                have=(outcome["second"], partitions(url)[name], refused, written(url)))
    proof.check("the first item is there, once", want=str(item["outbox_id"]),
                have=str(api.enqueue_once(url, "instr-mp-race-1", "bank-o", "mp-race-1")["outbox_id"]))
    proof.check("the partition is still there", want=True, have=table_exists(url, name))


@pytest.fixture(autouse=True)
def _this_month_attached(clean_database: Database) -> Any:
    """After each proof: this month's partition attached and recorded so, whatever the proof left
    (the race proof marks it detaching; the database is shared by the proofs that follow)."""
    yield
    with psycopg.connect(clean_database.url, autocommit=True) as owner:
        owner.execute("DELETE FROM payment_outbox.payment_outbox_retired_sequences AS s USING "
                      "payment_outbox.payment_outbox_attempt_partitions AS r "
                      "WHERE s.partition_name = r.partition_name AND r.state = 'detaching'")
        owner.execute("UPDATE payment_outbox.payment_outbox_attempt_partitions SET state = 'attached', "
                      "items = NULL, attempts = NULL WHERE state = 'detaching'")
        owner.execute("SELECT payment_outbox.ensure_attempt_partitions()")
        for name in ("payment_outbox_attempts_2019_06", "payment_outbox_attempts_2020_07",
                     "payment_outbox_attempts_2020_07_2"):  # the months these proofs made, gone for the next file
            if owner.execute("SELECT to_regclass(%s) IS NOT NULL", (f"payment_outbox.{name}",)).fetchone()[0]:
                owner.execute("ALTER TABLE payment_outbox.payment_outbox_attempts "
                              f"DETACH PARTITION payment_outbox.{name}")
                owner.execute(f"DROP TABLE payment_outbox.{name}")
            for table in ("payment_outbox_retired_sequences", "payment_outbox_attempt_partitions"):
                owner.execute(f"DELETE FROM payment_outbox.{table} WHERE partition_name = %s", (name,))
