"""Runs a SQL proof file (sql/tests/*.sql): one transaction, always rolled back.

A proof raises on the first invariant that does not hold; every `ok:` notice it raised on the
way is returned so a reader sees what was proved. Every proof ends, in its transaction and before
the rollback, with payment_outbox.check_invariants() as the owner: what it left behind must be a
consistent outbox. A line `-- requires: _name.sql` runs that file of sql/tests first, in the same
transaction (shared declarations such as the privilege matrix).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from runner import db
from runner.client import Client
from runner.schema import package

PROOF_DIR = package.SOURCE_SQL_DIR / "tests"
HELPERS = PROOF_DIR / "_proof_helpers.sql"
REQUIRES = re.compile(r"^-- requires: (_[a-z0-9_]+\.sql)$", re.MULTILINE)


@dataclass
class SqlProofResult:
    file: str
    passed: bool
    notices: list[str] = field(default_factory=list)
    error: str | None = None
    sqlstate: str | None = None
    violations: list[str] = field(default_factory=list)


def proof_files() -> list[Path]:
    return sorted(path for path in PROOF_DIR.glob("*.sql") if not path.name.startswith("_"))


def install_helpers(url: str) -> None:
    with db.connection(url, application_name="outbox sqlproof") as conn:
        conn.execute(HELPERS.read_text())
        conn.commit()


def required_files(path: Path) -> list[Path]:
    """The shared files a proof names with `-- requires: _name.sql`, in the order named."""
    return [PROOF_DIR / name for name in REQUIRES.findall(path.read_text())]


def run_proof(url: str, path: Path) -> SqlProofResult:
    result = SqlProofResult(file=path.name, passed=False)
    with db.connection(url, application_name=f"sqlproof {path.stem}") as conn:
        conn.add_notice_handler(lambda notice: result.notices.append(notice.message_primary or ""))
        try:
            for required in required_files(path):
                conn.execute(required.read_text())
            conn.execute(path.read_text())
            conn.execute("RESET ROLE")
            result.violations = [f"{v.invariant}: {v.detail}" for v in Client(conn).check_invariants()]
            result.passed = not result.violations
        except psycopg.Error as exc:
            result.error = str(exc).strip()
            result.sqlstate = exc.sqlstate
        finally:
            conn.rollback()
    return result
