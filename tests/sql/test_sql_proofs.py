"""Runs every SQL proof in sql/tests against a freshly migrated database."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.harness import sqlproof
from tests.conftest import Database, truncate_package_tables
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof


@pytest.fixture(scope="module")
def proof_database(database: Database) -> Database:
    sqlproof.install_helpers(database.url)
    return database


@pytest.mark.parametrize("path", sqlproof.proof_files(), ids=lambda path: path.stem)
def test_sql_proof(proof_database: Database, path: Path, proof: ProofRecord) -> None:
    truncate_package_tables(proof_database.url)
    result = sqlproof.run_proof(proof_database.url, path)
    proof.observe(file=result.file, notices=result.notices, sqlstate=result.sqlstate, violations=result.violations)
    print("\n".join(result.notices))
    proof.check(f"{path.name} raised nothing", want=None, have=result.error)
    proof.check(f"{path.name} proved something", want=True, have=any(n.startswith("ok:") for n in result.notices))
    proof.check(f"check_invariants() is empty after {path.name}", want=[], have=result.violations)
