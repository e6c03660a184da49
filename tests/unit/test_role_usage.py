"""The role-usage scan tells role switches from owner connections and flags the API called as owner."""

from __future__ import annotations

from pathlib import Path

from runner.evidence import role_usage

PLANTED = '''
import psycopg
import pytest
from tests.helpers.support import role_connection


@pytest.fixture
def seeded(database):
    with psycopg.connect(database.url) as conn:
        conn.execute(STATEMENTS)


def test_through_the_role(database):
    with role_connection(database.url, "outbox_ingest") as conn:
        conn.execute("SELECT * FROM payment_outbox.enqueue_payment_outbox('i', 'p', 'k', 'r', '{}')")


def test_as_owner(database):
    with psycopg.connect(database.url) as conn:
        conn.execute("SELECT * FROM payment_outbox.enqueue_payment_outbox('i', 'p', 'k', 'r', '{}')")


def test_unexplained(database):
    with role_connection(database.url, None) as conn:
        conn.execute(statement)


def test_truncates(database):
    with psycopg.connect(database.url) as conn:
        conn.execute("TRUNCATE payment_outbox.payment_outbox_pending")


def hold_table_lock(database):
    with psycopg.connect(database.url) as conn:
        conn.execute("LOCK TABLE payment_outbox.payment_outbox_attempts IN SHARE MODE")


def fault_that_calls_the_api(database):
    with psycopg.connect(database.url) as conn:
        conn.execute("LOCK TABLE payment_outbox.payment_outbox_attempts IN SHARE MODE")
        conn.execute("SELECT * FROM payment_outbox.claim_outbox_batch('w', 1)")
'''


def test_scan_classifies_each_connection(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_planted.py").write_text(PLANTED)
    uses = role_usage.scan(tmp_path, ("tests",))
    assert [(u.function, u.kind, u.purpose) for u in sorted(uses, key=lambda u: u.line)] == [
        ("seeded", "owner_connection", "fixture"),
        ("test_through_the_role", "role_switch", ""),
        ("test_as_owner", "owner_connection", "api-as-owner"),
        ("test_unexplained", "owner_connection", "unexplained"),
        ("test_truncates", "owner_connection", "setup"),
        ("hold_table_lock", "owner_connection", "fault"),
        ("fault_that_calls_the_api", "owner_connection", "api-as-owner"),
    ]
    assert [o["object"].split(" ")[1] for o in role_usage.verdict(uses)] == [
        "test_as_owner", "test_unexplained", "fault_that_calls_the_api"]


def test_role_set_in_connection_options_is_a_role_switch(tmp_path: Path) -> None:
    planted = tmp_path / "bench_like.py"
    planted.write_text('from psycopg.conninfo import make_conninfo\n\n\ndef ingest(url):\n'
                       '    return make_conninfo(url, options="-c role=outbox_ingest")\n')
    uses = role_usage.scan_file(planted, "runner/bench_like.py")
    assert [(u.kind, u.detail) for u in uses] == [("role_switch", "connection option: -c role=outbox_ingest")]


READS = '''
import psycopg

COUNT = "SELECT count(*) FROM payment_outbox.payment_outbox_pending"
PLANT = "UPDATE payment_outbox.participant_outbox_sequences SET next_sequence_id = 9"


def reads_back(database):
    with psycopg.connect(database.url) as conn:
        conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_idempotency_keys")
        conn.execute(COUNT)


def writes_through_a_name(database):
    with psycopg.connect(database.url) as conn:
        conn.execute(COUNT)
        conn.execute(sql)


def selects_then_writes(database):
    with psycopg.connect(database.url) as conn:
        conn.execute("SELECT 1; DELETE FROM x")


def as_a_member_of_a_runtime_role(citus):
    with psycopg.connect(citus.url("ingest")) as conn:
        conn.execute(anything)
'''


def test_a_literal_select_reads_back_and_a_login_url_is_its_role(tmp_path: Path) -> None:
    """Only statements written as a SELECT (in the block or a module constant) read back; a
    statement in a variable, or a SELECT followed by another statement, stays unexplained; a URL
    built for a runtime role's login is that role, not the owner."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_reads.py").write_text(READS)
    uses = role_usage.scan(tmp_path, ("tests",))
    assert [(u.function, u.kind, u.purpose) for u in sorted(uses, key=lambda u: u.line)] == [
        ("reads_back", "owner_connection", "read-back"),
        ("writes_through_a_name", "owner_connection", "unexplained"),
        ("selects_then_writes", "owner_connection", "unexplained"),
        ("as_a_member_of_a_runtime_role", "role_login", ""),
    ]
