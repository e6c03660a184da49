"""The ledger's conversion resumes after a crash at any step (issue 15, item 2).

A populated ledger (the current package, not yet converted) is left as an interrupted conversion
leaves it: staged, its CHECK added but not validated, one of its indexes INVALID (a CREATE INDEX
CONCURRENTLY that failed), another built. `outbox convert-ledger` then finishes it: the invalid
index is dropped and built again, nothing is lost, check_invariants() is empty.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from runner import db
from runner.schema import ledger_conversion, lockwait, migrate, package
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.support import ProofRecord, sqlstate_of
from tests.migrations.test_convert_ledger_under_load import ALLOCATORS_SQL, SEED_SQL
from tests.migrations.test_migrate import empty_database  # noqa: F401  (fixture)

pytestmark = pytest.mark.proof

POLICY = lockwait.LockPolicy(timeout_seconds=5, retries=3, first_backoff_seconds=0.05)
ITEMS = 2000


def test_an_interrupted_conversion_is_finished(empty_database: Database, proof: ProofRecord) -> None:  # noqa: F811
    url = empty_database.url
    migrate.migrate(url, say=lambda line: None, convert_ledger=False)
    with psycopg.connect(url, autocommit=True) as owner:  # setup: a populated ledger, then the crash's leftovers
        for role in package.runtime_roles():
            owner.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))
        owner.execute(SEED_SQL, {"items": ITEMS})
        owner.execute(ALLOCATORS_SQL)
        bound = owner.execute(db.named_sql("ledger_conversion_stage")).fetchone()[0]
        owner.execute(sql.SQL("ALTER TABLE payment_outbox.payment_outbox_attempts ADD CONSTRAINT {} "
                              "CHECK (item_created_at < {}) NOT VALID").format(
            sql.Identifier(ledger_conversion.BEFORE_CHECK), sql.Literal(bound)))
        # A unique index on a constant fails on the second row and is left INVALID, as a crash leaves one.
        failed = sqlstate_of(lambda: owner.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY payment_outbox_attempts_legacy_outbox_id_terminal_key "
            "ON payment_outbox.payment_outbox_attempts ((1))"))
        owner.execute("CREATE UNIQUE INDEX CONCURRENTLY payment_outbox_attempts_legacy_pkey "
                      "ON payment_outbox.payment_outbox_attempts (outbox_id, attempt_no, item_created_at)")
        invalid = owner.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                                "'payment_outbox.payment_outbox_attempts_legacy_outbox_id_terminal_key'::regclass"
                                ).fetchone()[0]
    proof.check("the leftovers: a failed concurrent build left an INVALID index", want=("23505", False),
                have=(failed, invalid))
    lines: list[str] = []
    outcome = ledger_conversion.convert(url, say=lines.append, policy=POLICY)
    proof.observe(convert=lines)
    proof.check("the conversion finished from where it stopped", want=(True, True),
                have=(outcome.converted, outcome.kept_rows))
    proof.check("it rebuilt only the invalid index and built the missing one",
                want=["payment_outbox_attempts_legacy_outbox_id_terminal_key",
                      "payment_outbox_attempts_legacy_idempotency_terminal_key"],
                have=[line.split("index ")[1].split(" ")[0] for line in lines if "built concurrently" in line])
    with psycopg.connect(url) as owner:
        rows = owner.execute("SELECT count(*) FROM payment_outbox.payment_outbox_attempts").fetchone()[0]
        relkind = owner.execute("SELECT relkind FROM pg_class WHERE oid = "
                                "'payment_outbox.payment_outbox_attempts'::regclass").fetchone()[0]
    proof.check("every row is in the partitioned ledger", want=(ITEMS * 2, "p"), have=(rows, relkind))
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
