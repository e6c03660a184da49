"""What holds on Citus: the append-only ledger on every shard, the privileges on every node, pause."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from runner.client import Client
from runner.harness import sqlproof
from runner.worker import RailOutcome
from runner.worker.bucket import BucketWorker
from tests.citus.conftest import LOGINS, Citus

WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")


def _dispatched_item(citus: Citus, participant: str, key: str) -> None:
    with Client.connect(citus.url("ingest"), None) as ingest:
        ingest.enqueue(f"i-{key}", participant, key, "SEPA", {"k": key})
    with BucketWorker.connected_to(citus.url("executor"), f"w-{key}") as worker:
        while (items := worker.claim(50)):
            for item in items:
                worker.complete(item, RailOutcome("DISPATCHED"))


def test_ledger_and_key_register_append_only_on_every_shard(citus: Citus, run_id: str) -> None:
    """UPDATE and DELETE are PO020 for the owner on the coordinator (routed to a shard) and on the
    worker's shard table itself: the triggers were created on every shard."""
    participant = f"ao-{run_id}"
    _dispatched_item(citus, participant, f"ao-{run_id}")
    statements = [
        "UPDATE payment_outbox.payment_outbox_attempts SET error_code = 'x' WHERE participant_id = %s::text",
        "DELETE FROM payment_outbox.payment_outbox_attempts WHERE participant_id = %s::text",
        "DELETE FROM payment_outbox.payment_outbox_idempotency_keys WHERE participant_id = %s::text",
    ]
    with psycopg.connect(citus.owner_url, autocommit=True) as conn:
        # The owner's own UPDATE and DELETE FROM payment_outbox.* (above) are refused too; then the
        # shard's name, from citus_shards (pg_dist_shard).
        for statement in statements:
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(statement, (participant,))
            assert refused.value.sqlstate == "PO020", statement
        shard = conn.execute(
            "SELECT shard_name, nodeport FROM citus_shards "
            "WHERE table_name = 'payment_outbox.payment_outbox_attempts'::regclass "
            "AND shardid = get_shard_id_for_distribution_column('payment_outbox.payment_outbox_attempts', %s::text)",
            (participant,)).fetchone()
        assert shard is not None
        rows = conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_attempts WHERE participant_id = %s",
                            (participant,)).fetchone()
    holder = next(node for node in citus.cluster.nodes if node.port == shard[1])
    with psycopg.connect(holder.url(), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(f"DELETE FROM payment_outbox.{shard[0].split('.')[-1]} WHERE participant_id = %s::text",
                         (participant,))
    assert refused.value.sqlstate == "PO020"
    with psycopg.connect(citus.owner_url) as conn:
        after = conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_attempts WHERE participant_id = %s",
                             (participant,)).fetchone()
    assert rows == after and rows is not None and rows[0] == 2


def test_runtime_roles_write_no_table_on_any_node(citus: Citus) -> None:
    """On the coordinator and on every worker (shell tables and shards alike): no runtime role may
    write a package table, and PUBLIC executes no package function."""
    urls = [citus.owner_url, *(node.url() for node in citus.cluster.nodes)]
    for url in urls:
        with psycopg.connect(url) as conn:
            conn.execute("SET citus.override_table_visibility = off")
            writable = conn.execute(
                "SELECT r.role, c.relname, w.privilege FROM pg_class AS c "
                "CROSS JOIN unnest(%s::text[]) AS r(role) CROSS JOIN unnest(%s::text[]) AS w(privilege) "
                "WHERE c.relnamespace = 'payment_outbox'::regnamespace AND c.relkind IN ('r', 'p') "
                "AND has_table_privilege(r.role, c.oid, w.privilege)",
                (list(LOGINS.values()), list(WRITES))).fetchall()
            public = conn.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc AS p "
                "WHERE p.pronamespace = 'payment_outbox'::regnamespace "
                "AND has_function_privilege('public', p.oid, 'EXECUTE') "
                "AND EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a "
                "            WHERE a.grantee = 0)").fetchall()
            shards = conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'payment_outbox'::regnamespace "
                                  "AND relname ~ '_[0-9]+$' AND relkind IN ('r', 'p')").fetchone()
        assert writable == [], f"{url}: runtime roles may write: {writable[:10]}"
        assert public == [], f"{url}: PUBLIC executes {public[:10]}"
        if url != citus.owner_url:
            assert shards is not None and shards[0] > 0, f"{url}: no shard seen, the check saw nothing"


def test_paused_rail_not_claimed_then_claimed_after_resume(citus: Citus, run_id: str) -> None:
    rail = f"RAIL-{run_id}"
    participant = f"pause-{run_id}"
    with Client.connect(citus.url("operator"), None) as operator:
        operator.pause_rail(rail, "maintenance", "proof")
        with Client.connect(citus.url("ingest"), None) as ingest:
            ingest.enqueue(f"i-{run_id}", participant, f"k-{run_id}", rail, {"n": 1})
        with BucketWorker.connected_to(citus.url("executor"), f"pause-{run_id}") as worker:
            claimed = []
            while (items := worker.claim(50)):
                claimed += [i for i in items if i.participant_id == participant]
                for item in items:
                    worker.complete(item, RailOutcome("DISPATCHED"))
            assert claimed == [], "an item of a paused rail was claimed"
            operator.resume_rail(rail, "proof")
            while (items := worker.claim(50)):
                claimed += [i for i in items if i.participant_id == participant]
                for item in items:
                    worker.complete(item, RailOutcome("DISPATCHED"))
    assert [i.idempotency_key for i in claimed] == [f"k-{run_id}"]


def test_check_invariants_names_a_planted_violation(citus: Citus, run_id: str) -> None:
    """check_invariants() on Citus reads every participant's shard group: an allocator the owner
    moved out of step (as a DBA writing a table by hand would) is named, with its participant;
    put back, it is not."""
    participant = f"inv-{run_id}"
    with Client.connect(citus.url("ingest"), None) as ingest:
        ingest.enqueue(f"i-{run_id}", participant, f"k-{run_id}", "SEPA", {"n": 1})
    plant = ("UPDATE payment_outbox.participant_outbox_sequences SET next_sequence_id = next_sequence_id + %s "
             "WHERE participant_id = %s::text")
    with psycopg.connect(citus.owner_url, autocommit=True) as owner, \
            Client.connect(citus.url("readonly"), None) as readonly:
        # setup: the plant (UPDATE payment_outbox.participant_outbox_sequences) and its undoing, as the owner
        owner.execute(plant, (3, participant))
        planted = [(v.invariant, v.participant_id) for v in readonly.check_invariants_by_bucket()
                   if v.participant_id == participant]
        owner.execute(plant, (-3, participant))
        mended = [v for v in readonly.check_invariants_by_bucket() if v.participant_id == participant]
    assert planted == [("allocator_out_of_step", participant)]
    assert mended == []


def test_quarantine_release_and_fail_from_the_coordinator(citus: Citus, run_id: str) -> None:
    """With max_attempt_count 2, a RETRYABLE first dispatch is QUARANTINED, never claimed again;
    the operator's release (on the coordinator, the row locked on its shard) makes it due and it is
    dispatched; a second quarantined item is failed; deciding either again is PO030."""
    participant = f"q-{run_id}"
    with Client.connect(citus.url("operator"), None) as operator:
        operator.set_settings(2)
        try:
            with Client.connect(citus.url("ingest"), None) as ingest:
                for n in (1, 2):
                    ingest.enqueue(f"i-{n}", participant, f"q-{run_id}-{n}", "SEPA", {"n": n})
            with BucketWorker.connected_to(citus.url("executor"), f"q-{run_id}") as worker:
                outcomes = {}
                while (items := worker.claim(50)):
                    for item in items:
                        done = worker.complete(item, RailOutcome("RETRYABLE", error_code="BUSY")
                                               if item.participant_id == participant else RailOutcome("DISPATCHED"))
                        if item.participant_id == participant:
                            outcomes[item.idempotency_key] = (str(item.outbox_id), done.state)
                assert sorted(state for _, state in outcomes.values()) == ["QUARANTINED", "QUARANTINED"]
                released_id = outcomes[f"q-{run_id}-1"][0]
                failed_id = outcomes[f"q-{run_id}-2"][0]
                released = operator.release_quarantined(released_id, reason="rail has none", actor="proof")
                failed = operator.fail_quarantined(failed_id, reason="must not pay", actor="proof")
                with pytest.raises(psycopg.Error) as again:
                    operator.release_quarantined(failed_id, reason="again", actor="proof")
                operator.set_settings(20)
                redispatched = []
                while (items := worker.claim(50)):
                    for item in items:
                        redispatched.append(str(item.outbox_id))
                        worker.complete(item, RailOutcome("DISPATCHED"))
        finally:
            operator.set_settings(20)
    assert (released.state, failed.state) == ("RELEASED", "FAILED")
    assert again.value.sqlstate == "PO030"
    assert redispatched == [released_id]


def test_one_place_per_rule_on_every_node(citus: Citus) -> None:
    """sql/tests/one_place_per_rule.sql on the coordinator and on each worker: the Citus bodies
    (sql/citus/) append to the ledger only through _ledger_row, read the attempt limit only through
    _state_at_limit and compare payloads only through _same_payload, and those helpers exist on
    every node, where the delegated calls run them. The proof's helpers live only in the
    transaction, which is rolled back (Citus propagates no DDL from it)."""
    helpers = (sqlproof.PROOF_DIR / "_proof_helpers.sql").read_text()
    rule = (sqlproof.PROOF_DIR / "one_place_per_rule.sql").read_text()
    citus_appenders = ["claim_outbox_bucket", "complete_participant_attempt", "repair_zombie_bucket"]
    for url in [citus.owner_url, *(node.url() for node in citus.cluster.nodes)]:
        notices, through_ledger_row = _run_rule(url, helpers, rule, citus_appenders)
        assert through_ledger_row == citus_appenders, f"{url}: {through_ledger_row}"
        assert any("every function that appends to the ledger" in n for n in notices), f"{url}: {notices}"


def _run_rule(url: str, helpers: str, rule: str, appenders: list[str]) -> tuple[list[str], list[str]]:
    """The rule file's ok: notices on one node, and which of appenders build rows with _ledger_row there."""
    notices: list[str] = []
    with psycopg.connect(url) as conn:
        conn.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
        conn.execute("SET LOCAL citus.enable_ddl_propagation = off")
        conn.execute(helpers)
        conn.execute(rule)
        through_ledger_row = [row[0] for row in conn.execute(
            "SELECT p.proname FROM pg_proc AS p WHERE p.pronamespace = 'payment_outbox'::regnamespace "
            "AND p.prosrc ~ 'payment_outbox\\._ledger_row\\(' AND p.proname = ANY(%s) ORDER BY p.proname",
            (appenders,)).fetchall()]
        conn.rollback()
    return notices, through_ledger_row


# The ledger's partitions, its row count and the partition registry, as one row.
RETENTION_STATE = ("SELECT (SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_inherits AS i "
                   "JOIN pg_class AS c ON c.oid = i.inhrelid "
                   "WHERE i.inhparent = 'payment_outbox.payment_outbox_attempts'::regclass), "
                   "(SELECT count(*) FROM payment_outbox.payment_outbox_attempts), "
                   "(SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) "
                   " FROM payment_outbox.payment_outbox_attempt_partitions AS r)")


def test_retention_refused_on_citus_nothing_changed(citus: Citus, run_id: str) -> None:
    """`outbox retention` on the coordinator, as the owner, with a ledger holding a terminal item:
    exit code 2 naming Citus, with and without --dry-run; the ledger's partitions, the partition
    registry and the ledger's rows are as they were (Citus refuses DETACH PARTITION ... CONCURRENTLY
    on a distributed table, so retention is not offered there: docs/scale-out.md, Retention)."""
    _dispatched_item(citus, f"rt-{run_id}", f"rt-{run_id}")
    with psycopg.connect(citus.owner_url) as conn:
        before = conn.execute(RETENTION_STATE).fetchone()
    assert before is not None and before[0] and before[1] > 0
    env = {**os.environ, "DATABASE_URL": citus.owner_url}
    for extra in ([], ["--dry-run"]):
        run = subprocess.run([str(Path(sys.executable).parent / "outbox"), "retention", "--window", "1 day", *extra],
                             env=env, capture_output=True, text=True, check=False)
        assert run.returncode == 2, (extra, run.returncode, run.stdout, run.stderr)
        assert "distributed on Citus" in run.stderr and "nothing changed" in run.stderr, run.stderr
        assert run.stdout == "", run.stdout
    with psycopg.connect(citus.owner_url) as conn:
        assert conn.execute(RETENTION_STATE).fetchone() == before
