"""A ledger conversion that gave up half way is named, exits 3, and is finished by migrate (issue 25, item 3).

The conversion adds CHECK (item_created_at < bound) to the still unpartitioned ledger; a later
step that gives up on a lock (here the swap, behind an ACCESS SHARE lock on the staged table)
leaves it. After the bound no item could be written to the ledger: check_invariants() names the
unfinished conversion and its deadline, the command exits 3 (the documented code for a run that
gave up on a lock) naming who blocked it, and the next `outbox migrate` finishes the conversion.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from runner import cli, db
from runner.schema import migrate, package
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.support import ProofRecord
from tests.migrations.test_convert_ledger_under_load import ALLOCATORS_SQL, SEED_SQL
from tests.migrations.test_migrate import empty_database  # noqa: F401  (fixture)

pytestmark = pytest.mark.proof


def test_an_interrupted_conversion_is_named_and_finished(empty_database: Database, proof: ProofRecord,  # noqa: F811
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    url = empty_database.url
    migrate.migrate(url, say=lambda line: None, convert_ledger=False)
    with psycopg.connect(url, autocommit=True) as owner:  # setup: a populated ledger, staged
        for role in package.runtime_roles():
            owner.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))
        owner.execute(SEED_SQL, {"items": 20})
        owner.execute(ALLOCATORS_SQL)
        bound = owner.execute(db.named_sql("ledger_conversion_stage")).fetchone()[0]
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("OUTBOX_MIGRATE_LOCK_TIMEOUT", "1")
    monkeypatch.setenv("OUTBOX_MIGRATE_LOCK_RETRIES", "0")
    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE payment_outbox.payment_outbox_attempts_new IN ACCESS SHARE MODE")
        code = cli.main(["convert-ledger"])
        err = capsys.readouterr().err
        proof.observe(stderr=err)
        proof.check("the conversion that gave up on a lock exits 3 and names the blocking pid",
                    want=(3, True), have=(code, f"pid {holder.info.backend_pid}" in err))
    with psycopg.connect(url) as owner:
        relkind = owner.execute("SELECT relkind FROM pg_class WHERE oid = "
                                "'payment_outbox.payment_outbox_attempts'::regclass").fetchone()[0]
    unfinished = [v for v in api.violations(url) if v[0] == "ledger_conversion_unfinished"]
    proof.check("the ledger is left unpartitioned, and check_invariants() names the conversion and its deadline",
                want=("r", 1, True), have=(relkind, len(unfinished),
                                           bool(unfinished) and str(bound.year) in unfinished[0][3]))
    migrate.migrate(url, say=lambda line: None)
    with psycopg.connect(url) as owner:
        relkind = owner.execute("SELECT relkind FROM pg_class WHERE oid = "
                                "'payment_outbox.payment_outbox_attempts'::regclass").fetchone()[0]
    proof.check("the next outbox migrate finishes it; check_invariants() is empty", want=("p", []),
                have=(relkind, api.violations(url)))
