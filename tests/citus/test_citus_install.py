"""The distributed install: what is distributed how, the key's scope on Citus, and bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from runner.client import Client
from runner.clusters.citus import SHARD_COUNT, CitusCluster
from runner.schema import citus as citus_schema
from tests.citus.conftest import Citus

OUTBOX = Path(sys.executable).parent / "outbox"

DISTRIBUTED = ("participant_outbox_sequences", "payment_outbox_pending", "payment_outbox_attempts",
               "payment_outbox_idempotency_keys")
REFERENCE = ("payment_outbox_settings", "payment_outbox_settings_history", "payment_outbox_rails",
             "payment_outbox_rail_history", "payment_outbox_attempt_partitions", "payment_outbox_locks",
             "payment_outbox_retired_sequences", "payment_outbox_key_conflicts", "payment_outbox_buckets")
DELEGATED = {
    "enqueue_payment_outbox": "p_participant_id",
    "complete_participant_attempt": "p_participant_id",
    "claim_outbox_bucket": "p_bucket_key",
    "repair_zombie_bucket": "p_bucket_key",
}


def test_tables_distributed_by_participant_and_colocated(citus: Citus) -> None:
    with psycopg.connect(citus.owner_url) as conn:
        rows: dict[str, int] = dict(conn.execute(
            "SELECT logicalrelid::regclass::text, colocationid FROM pg_dist_partition "
            "WHERE partmethod = 'h' AND column_to_column_name(logicalrelid, partkey) = 'participant_id' "
            "AND logicalrelid::regclass::text LIKE 'payment_outbox.%'").fetchall())
        reference = {r[0] for r in conn.execute(
            "SELECT logicalrelid::regclass::text FROM pg_dist_partition WHERE partmethod = 'n' "
            "AND repmodel = 't'").fetchall()}
    distributed = {name.split(".")[1]: colocation for name, colocation in rows.items()}
    for table in DISTRIBUTED:
        assert table in distributed, f"{table} is not distributed by participant_id: {sorted(distributed)}"
    assert len({distributed[t] for t in DISTRIBUTED}) == 1, f"not co-located: {distributed}"
    assert {f"payment_outbox.{t}" for t in REFERENCE} <= reference, f"reference tables: {sorted(reference)}"


def test_hot_path_delegated_by_participant_or_bucket(citus: Citus) -> None:
    with psycopg.connect(citus.owner_url) as conn:
        rows = conn.execute(
            "SELECT p.proname, (p.proargnames)[o.distribution_argument_index + 1], o.force_delegation, "
            "o.colocationid = (SELECT colocationid FROM pg_dist_partition "
            "                  WHERE logicalrelid = 'payment_outbox.payment_outbox_pending'::regclass) "
            "FROM pg_dist_object AS o JOIN pg_proc AS p ON o.classid = 'pg_proc'::regclass AND o.objid = p.oid "
            "WHERE p.pronamespace = 'payment_outbox'::regnamespace AND o.distribution_argument_index IS NOT NULL"
        ).fetchall()
    with Client.connect(citus.url("executor"), None) as executor:
        buckets = executor.buckets()
    delegated = {name: (argument, forced, colocated) for name, argument, forced, colocated in rows}
    for name, argument in DELEGATED.items():
        assert delegated.get(name) == (argument, True, True), f"{name}: {delegated.get(name)}"
    assert [b.bucket for b in buckets] == list(range(SHARD_COUNT))


def test_delegated_enqueue_runs_on_the_participants_node(citus: Citus, run_id: str) -> None:
    """The enqueue's rows are on the worker Citus placed the participant's shard on, and the call
    ran there: the worker's own statistics count the allocator's update on its shard."""
    participant = f"bank-{run_id}"
    with Client.connect(citus.url("ingest"), None) as ingest:
        ingest.enqueue(f"i-{run_id}", participant, f"k-{run_id}", "SEPA", {"amount": "1.00"})
    with psycopg.connect(citus.owner_url) as conn:
        port = conn.execute(
            "SELECT nodeport FROM citus_shards WHERE table_name = 'payment_outbox.payment_outbox_pending'::regclass "
            "AND shardid = get_shard_id_for_distribution_column('payment_outbox.payment_outbox_pending', %s::text)",
            (participant,)).fetchone()[0]
    holder = next(node for node in citus.cluster.nodes if node.port == port)
    with psycopg.connect(holder.url()) as conn:
        found = conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_pending WHERE participant_id = %s",
                             (participant,)).fetchone()[0]
    assert found == 1


def test_key_is_scoped_to_its_participant(citus: Citus, run_id: str) -> None:
    """On Citus a key belongs to its participant: repeats there return the one item (no id burnt),
    other arguments there are PO001 with nothing written, the same key under another participant
    is another item (single-node: PO001; docs/scale-out.md)."""
    a, b = f"bank-a-{run_id}", f"bank-b-{run_id}"
    payload = {"amount": "5.00"}
    with Client.connect(citus.url("ingest"), None) as ingest:
        first = ingest.enqueue(f"i-{run_id}", a, f"k-{run_id}", "SEPA", payload)
        again = ingest.enqueue(f"i-{run_id}", a, f"k-{run_id}", "SEPA", payload)
        with pytest.raises(psycopg.Error) as refused:
            ingest.enqueue(f"i-{run_id}", a, f"k-{run_id}", "SEPA", {"amount": "6.00"})
        other = ingest.enqueue(f"i-{run_id}", b, f"k-{run_id}", "SEPA", payload)
        following = ingest.enqueue(f"i2-{run_id}", a, f"k2-{run_id}", "SEPA", payload)
    assert refused.value.sqlstate == "PO001"
    assert (again.outbox_id, again.sequence_id) == (first.outbox_id, first.sequence_id)
    assert other.outbox_id != first.outbox_id and other.sequence_id == 1
    assert (first.sequence_id, following.sequence_id) == (1, 2), "a repeat or a refusal burnt a sequence id"
    with psycopg.connect(citus.owner_url) as conn:
        keys = conn.execute("SELECT participant_id, count(*) FROM payment_outbox.payment_outbox_idempotency_keys "
                            "WHERE idempotency_key = %s GROUP BY 1 ORDER BY 1", (f"k-{run_id}",)).fetchall()
    assert keys == [(a, 1), (b, 1)]


def test_bad_inputs_refused_with_nothing_written(citus: Citus, run_id: str) -> None:
    with Client.connect(citus.url("executor"), None) as executor:
        with pytest.raises(psycopg.Error) as no_bucket:
            executor.claim_bucket(f"no-such-bucket-{run_id}", "w1", 10)
        with pytest.raises(psycopg.Error) as other_participant:
            executor.complete_participant(f"bank-x-{run_id}", "00000000-0000-4000-8000-000000000000", 1,
                                          "DISPATCHED", worker_id="w1")
        with pytest.raises(psycopg.Error) as not_delegated:
            # A subquery argument: Citus does not delegate the call, which then runs on the
            # coordinator, where no shard of the bucket is.
            executor.conn.execute("SELECT * FROM payment_outbox.claim_outbox_bucket("
                                  "(SELECT min(bucket_key) FROM payment_outbox.outbox_buckets()), 'w1', 10)")
    with psycopg.connect(citus.url("readonly")) as conn:
        with pytest.raises(psycopg.Error) as across_shards:
            conn.execute("SELECT * FROM payment_outbox.check_invariants()")
    with psycopg.connect(citus.url("ingest")) as conn:
        with pytest.raises(psycopg.Error) as batch:
            conn.execute("SELECT * FROM payment_outbox.enqueue_payment_outbox_batch(%s)",
                         (Jsonb([{"instruction_id": "i", "participant_id": "p", "idempotency_key": "k",
                                  "rail_type": "SEPA", "payload": {}}]),))
    assert no_bucket.value.sqlstate == "PO050"
    assert other_participant.value.sqlstate == "PO003"
    assert batch.value.sqlstate == "PO053"
    assert not_delegated.value.sqlstate == "PO052"
    assert across_shards.value.sqlstate == "PO054"
    with psycopg.connect(citus.owner_url) as conn:
        written = conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_attempts "
                               "WHERE worker_id = 'w1'").fetchone()
    assert written == (0,), "a refused call wrote a ledger row"


def test_coordinator_without_workers_refused(citus: Citus) -> None:
    """`outbox migrate --citus` on a coordinator with no worker: exit code 2, a message saying what
to do, the single-node package installed and nothing distributed."""
    with CitusCluster(workers=0) as lonely:
        run = subprocess.run([str(OUTBOX), "migrate", "--citus"], capture_output=True, text=True, check=False,
                             env={**os.environ, "DATABASE_URL": lonely.database_url})
        with psycopg.connect(lonely.database_url) as conn:  # reads pg_dist_partition only
            distributed = citus_schema.is_distributed(conn)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "no active worker" in run.stderr
    assert not distributed


def test_concurrent_creators_of_one_key_make_one_item(citus: Citus, run_id: str) -> None:
    """Eight sessions enqueue one key of one participant at once (a barrier, then each its own
    delegated call): one item, one sequence id, one register row; the next key gets id 2."""
    participant, key = f"race-{run_id}", f"k-{run_id}"
    sessions = 8
    barrier = threading.Barrier(sessions)
    results: list[str] = []
    errors: list[BaseException] = []

    def enqueue() -> None:
        try:
            with Client.connect(citus.url("ingest"), None, name="race") as client:
                barrier.wait(timeout=60)
                results.append(str(client.enqueue(f"i-{run_id}", participant, key, "SEPA", {"n": 1}).outbox_id))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=enqueue) for _ in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    with Client.connect(citus.url("ingest"), None) as ingest:
        following = ingest.enqueue(f"i2-{run_id}", participant, f"k2-{run_id}", "SEPA", {"n": 2})
    with psycopg.connect(citus.owner_url) as conn:
        registered = conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_idempotency_keys "
                                  "WHERE participant_id = %s::text", (participant,)).fetchone()
    assert errors == []
    assert len(results) == sessions and len(set(results)) == 1, results
    assert following.sequence_id == 2, "a creator that lost the race burnt a sequence id"
    assert registered == (2,)
