"""Package settings live in a table; nothing a caller can SET changes an outcome (issue 12, finding 2).

Reproduced before: as outbox_repair, `SET payment_outbox.max_attempt_count = 0` then
`repair_zombie_attempts(0)` recorded FAILED for claims whose workers were still sending them;
`'lots'` made every RETRYABLE completion and every repair fail with 22P02; a garbage
`payment_outbox.allocator_hint` made enqueue fail with 22P02. Now the maximum attempt count is
read from payment_outbox_settings, changed only through set_outbox_settings by outbox_operator,
and every change is kept in payment_outbox_settings_history.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from runner.client import Client, Role
from runner.schema import migrate
from tests.conftest import Database, Server, drop_database
from tests.helpers import api
from tests.helpers.support import ProofRecord, sqlstate_of

pytestmark = pytest.mark.proof

SET_SESSION_SETTING = "SELECT set_config(%s, %s, false)"
SEED_NOTES = ("SELECT old_value, new_value, note FROM payment_outbox.payment_outbox_settings_history "
              "WHERE setting = 'max_attempt_count'")


def history(client: Client) -> list[tuple[str, str | None, str | None, str]]:
    return [(c.setting, c.old_value, c.new_value, c.changed_by) for c in client.settings_history()]


@pytest.fixture
def settings_restored(clean_database: Database) -> Iterator[Database]:
    """The default maximum again afterwards, set the only way there is (as outbox_operator)."""
    yield clean_database
    with Client.connect(clean_database.url, Role.OPERATOR, name="restore-settings") as client:
        client.set_settings(20)


def claim_three(url: str) -> list[tuple[str, int]]:
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        for n in range(3):
            client.enqueue(f"instr-s{n}", "bank-s", f"key-s{n}", "sepa", {"n": n})
    with Client.connect(url, Role.EXECUTOR, name="w-live") as client:
        return [(str(c.outbox_id), c.attempt_no) for c in client.claim("w-live", 10)]


@pytest.mark.parametrize("value", ["0", "lots", "-1", ""])
def test_a_session_setting_changes_no_repair(clean_database: Database, proof: ProofRecord, value: str) -> None:
    url = clean_database.url
    claimed = claim_three(url)
    with Client.connect(url, Role.REPAIR, name="repair") as client:
        client.conn.execute(SET_SESSION_SETTING, ("payment_outbox.max_attempt_count", value))
        try:
            repaired = [(str(r.outbox_id), r.new_state) for r in client.repair(0)]
        except psycopg.Error as exc:
            repaired = [("error", exc.sqlstate or "")]
    proof.check(f"with payment_outbox.max_attempt_count = {value!r}, repair requeues the three claims",
                want=sorted((oid, "ZOMBIE_REQUEUE") for oid, _ in claimed), have=sorted(repaired))
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


@pytest.mark.parametrize("value", ["1", "lots"])
def test_a_session_setting_changes_no_completion(clean_database: Database, proof: ProofRecord, value: str) -> None:
    url = clean_database.url
    (outbox_id, attempt_no), *_ = claim_three(url)
    with Client.connect(url, Role.EXECUTOR, name="w-live") as client:
        client.conn.execute(SET_SESSION_SETTING, ("payment_outbox.max_attempt_count", value))
        try:
            done = client.complete(outbox_id, attempt_no, "RETRYABLE", worker_id="w-live")
            row: tuple[object, ...] = (done.attempt_no, done.state)
        except psycopg.Error as exc:
            row = ("error", exc.sqlstate)
    proof.check(f"with payment_outbox.max_attempt_count = {value!r}, RETRYABLE stays RETRYABLE",
                want=(2, "RETRYABLE"), have=row)


def test_a_session_setting_changes_no_enqueue(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        client.conn.execute(SET_SESSION_SETTING, ("payment_outbox.allocator_hint", "garbage x"))
        outcome = sqlstate_of(lambda: client.enqueue("instr-x", "x", "key-x", "sepa", {}))
    proof.check("a garbage payment_outbox.allocator_hint changes nothing", want=None, have=outcome)
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_the_operator_changes_the_maximum_and_every_change_is_kept(settings_restored: Database,
                                                                    proof: ProofRecord) -> None:
    url = settings_restored.url
    with Client.connect(url, Role.OPERATOR, name="operator") as client:
        before = history(client)
        proof.check("the upgrade seeded the default, 20", want=20, have=client.set_settings().max_attempt_count)
        proof.check("a value below the range is refused", want="PO016",
                    have=sqlstate_of(lambda: client.set_settings(1)))
        proof.check("a value above the range is refused", want="PO016",
                    have=sqlstate_of(lambda: client.set_settings(1001)))
        proof.check("refusals wrote no history", want=before, have=history(client))
        proof.check("4 is accepted", want=4, have=client.set_settings(4).max_attempt_count)
        proof.check("setting the same value again changes nothing", want=4,
                    have=client.set_settings(4).max_attempt_count)
        after = history(client)
        login = client.conn.execute("SELECT session_user").fetchone()
    proof.check("the change is kept: which setting, old, new, and the login that made it",
                want=before + [("max_attempt_count", "20", "4", login[0] if login else None)], have=after)
    for role in (Role.INGEST, Role.EXECUTOR, Role.REPAIR, Role.READONLY, Role.AUDITOR):
        with Client.connect(url, role, name=str(role)) as client:
            proof.check(f"{role} cannot change settings", want="42501",
                        have=sqlstate_of(lambda: client.set_settings(30)))
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


@pytest.mark.parametrize(("database_setting", "want"), [(None, 20), ("7", 7), ("lots", "PO016"), ("0", "PO016")])
def test_the_upgrade_seeds_the_maximum_the_database_ran_with(server: Server, proof: ProofRecord,
                                                            database_setting: str | None, want: object) -> None:
    """tables/0011 reads payment_outbox.max_attempt_count once, as the owner, at migrate time; a
    value out of range stops the migration with nothing of 0011 applied."""
    name = f"outbox_seed_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if database_setting is not None:  # PostgreSQL 15 lets only a superuser set an unknown placeholder
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} SET payment_outbox.max_attempt_count = {}").format(
                sql.Identifier(name), sql.Literal(database_setting)))
    url = server.database_url(name)
    try:
        try:
            migrate.migrate(url, say=lambda line: None)
        except psycopg.Error as exc:
            with psycopg.connect(url) as conn:
                table = conn.execute("SELECT to_regclass('payment_outbox.payment_outbox_settings')").fetchone()
            proof.check(f"with {database_setting!r} the migration stops, 0011 not applied", want=(want, None),
                        have=(exc.sqlstate, table[0] if table else "?"))
            return
        with psycopg.connect(url, autocommit=True) as conn:  # setup: the tests act as the roles
            conn.execute("GRANT outbox_operator TO CURRENT_USER")
        with Client.connect(url, Role.OPERATOR, name="operator") as client:
            seeded = client.set_settings().max_attempt_count
            notes = client.conn.execute(SEED_NOTES).fetchall()
        proof.check(f"with {database_setting!r} the settings row holds the maximum", want=want, have=seeded)
        proof.check("one history row says where the value came from", want=1, have=len(notes))
        proof.observe(history=notes)
    finally:
        drop_database(server, name)
