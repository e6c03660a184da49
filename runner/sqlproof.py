"""Runs a SQL proof file (sql/tests/*.sql): one transaction, always rolled back.

A proof raises on the first invariant that does not hold; every `ok:` notice it raised on the
way is returned so a reader sees what was proved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from runner import db

PROOF_DIR = db.PACKAGE_SQL_DIR / "tests"
HELPERS = PROOF_DIR / "_proof_helpers.sql"


@dataclass
class ProofResult:
    file: str
    passed: bool
    notices: list[str] = field(default_factory=list)
    error: str | None = None
    sqlstate: str | None = None


def proof_files() -> list[Path]:
    return sorted(path for path in PROOF_DIR.glob("*.sql") if not path.name.startswith("_"))


def install_helpers(url: str) -> None:
    with db.connection(url, application_name="outbox sqlproof") as conn:
        conn.execute(HELPERS.read_text())
        conn.commit()


def run_proof(url: str, path: Path) -> ProofResult:
    result = ProofResult(file=path.name, passed=False)
    with db.connection(url, application_name=f"sqlproof {path.stem}") as conn:
        conn.add_notice_handler(lambda notice: result.notices.append(notice.message_primary))
        try:
            conn.execute(path.read_text())
            result.passed = True
        except psycopg.Error as exc:
            result.error = str(exc).strip()
            result.sqlstate = exc.sqlstate
        finally:
            conn.rollback()
    return result
