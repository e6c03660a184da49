"""Growth you can see: the hot queue's dead rows, sizes per partition and the vacuum horizon, in
`outbox metrics` as outbox_readonly reads them."""

from __future__ import annotations

import subprocess

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Database
from tests.helpers import zombies
from tests.helpers.support import ProofRecord, role_connection
from tests.repair.test_repair_metrics import enqueue, outbox_env

pytestmark = pytest.mark.proof


def labelled(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def run_metrics(url: str, proof: ProofRecord) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    done = subprocess.run([str(zombies.OUTBOX), "metrics"], env=outbox_env(url, None), capture_output=True,
                          text=True, timeout=60, check=False)
    proof.observe(stdout=done.stdout, stderr=done.stderr)
    proof.check("outbox metrics exits 0", want=0, have=done.returncode)
    return labelled(done.stdout)


def make_dead_rows(url: str, count: int) -> bool:
    """`count` dead versions in the hot queue, made by the owner, the statistics flushed where the
    server can be asked to (PostgreSQL 15 and later); returns whether they were."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE payment_outbox.payment_outbox_pending SET next_attempt_at = next_attempt_at")
        if conn.info.server_version < 150000:
            return False
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT 1")  # the flush happens before the server is ready for this one
    return True


def test_queue_dead_rows_and_sizes_per_table(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    enqueue(url, 5)
    flushed = make_dead_rows(url, 5)
    got = run_metrics(url, proof)
    dead = got.get(("payment_outbox_queue_dead_tuples", ()), -1)
    proof.check("queue_dead_tuples counts the 5 dead versions (at least; autovacuum may not have run)"
                if flushed else "queue_dead_tuples is a count (PostgreSQL 14 flushes statistics on its own time)",
                want=True, have=dead >= 5 if flushed else dead >= 0)
    pending = ("payment_outbox_relation_dead_rows",
               (("partition_name", "payment_outbox_pending"), ("table_name", "payment_outbox_pending")))
    proof.check("the labelled dead rows of the queue are the queue_dead_tuples gauge", want=dead, have=got.get(pending))
    sizes = {dict(labels)["table_name"]: value for (name, labels), value in got.items()
             if name == "payment_outbox_relation_total_bytes"}
    proof.check("every package table has a size, in bytes, above zero", want={
        "payment_outbox_attempts": True, "payment_outbox_idempotency_keys": True, "payment_outbox_pending": True},
        have={table: value > 0 for table, value in sizes.items()})


def test_a_long_transaction_elsewhere_shows_as_the_session_horizon(clean_database: Database,
                                                                    proof: ProofRecord) -> None:
    url = clean_database.url
    with psycopg.connect(url, autocommit=True) as owner:
        row = owner.execute("SELECT pg_has_role('pg_read_all_stats', 'USAGE')").fetchone()
        sees_all = bool(row and row[0])
    # The holder: a REPEATABLE READ snapshot of another session, as a report or a pg_dump keeps one.
    with role_connection(url, "outbox_auditor", name="long reader", autocommit=False) as holder:
        holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM payment_outbox.payment_outbox_attempts")
        holder_pid = holder.info.backend_pid
        enqueue(url, 3)  # three transactions commit behind the holder's snapshot
        got = run_metrics(url, proof)
        with role_connection(url, "outbox_readonly", name="operator") as reader:
            rows = reader.execute("SELECT horizon_source, holder, complete, xmin_age "
                                  "FROM payment_outbox.vacuum_horizon()").fetchall()
        holder.rollback()
    session = ("horizon_source", "session"),
    proof.observe(vacuum_horizon=[list(row) for row in rows])
    proof.check("the session horizon is at least 3 transactions old", want=True,
                have=got.get(("payment_outbox_vacuum_horizon_xmin_age", session), 0) >= 3)
    proof.check("vacuum_horizon names the holder's pid to outbox_readonly", want=f"pid {holder_pid}",
                have=next((holder for source, holder, _, _ in rows if source == "session"), None))
    proof.check("complete says whether the package's owner sees every session", want=float(sees_all),
                have=got.get(("payment_outbox_vacuum_horizon_complete", session)))
    proof.check("no prepared transaction and no slot hold a horizon here", want=[0.0, 0.0], have=[
        got.get(("payment_outbox_vacuum_horizon_xmin_age", (("horizon_source", source),)))
        for source in ("prepared_transaction", "replication_slot")])
