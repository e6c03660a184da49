"""The static guardrails of the evidence bundle: facts about the installed package, each PASS or FAIL
with the objects that break it. The sqlfluff report is a guardrail too."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from runner import db, environment
from runner.evidence import dynamic_sql
from runner.harness import sqlproof
from runner.schema import package

DECLARED_PRIVILEGES = sqlproof.PROOF_DIR / "_declared_privileges.sql"
REPO = environment.REPO
PACKAGE_DIRS = ("roles", "tables", "views", "functions")


@dataclass
class Guardrail:
    name: str
    rule: str
    checked: str  # what was looked at, e.g. "11 functions"
    offenders: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "FAIL" if self.offenders else "PASS"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def static_guardrails(url: str) -> list[Guardrail]:
    with db.connection(url, application_name="outbox evidence guardrails") as conn:
        counts = db.first_row(conn.execute(db.named_sql("package_object_counts")))
        found = [
            _from_query(conn, "security_definer_search_path",
                        "every SECURITY DEFINER function pins search_path, pg_temp named last",
                        f"{counts[0]} SECURITY DEFINER functions"),
            _from_query(conn, "public_execute", "PUBLIC has EXECUTE on nothing in the schema",
                        f"{counts[1]} functions"),
            dynamic_sql_guardrail(conn),
            table_grants_guardrail(conn, f"{counts[2]} relations"),
        ]
        conn.rollback()
    return found


def _from_query(conn: psycopg.Connection, name: str, rule: str, checked: str) -> Guardrail:
    rows = conn.execute(db.named_sql(f"guardrail_{name}")).fetchall()
    return Guardrail(name=name, rule=rule, checked=checked,
                     offenders=[{"object": offender, "detail": detail} for offender, detail in rows])


def dynamic_sql_guardrail(conn: psycopg.Connection) -> Guardrail:
    """EXECUTE statements in pg_proc.prosrc of every plpgsql function, and in the DO blocks of sql/."""
    statements = []
    bodies = conn.execute(db.named_sql("plpgsql_bodies")).fetchall()
    for function_name, body in bodies:
        statements.extend(dynamic_sql.execute_statements(f"pg_proc {function_name}", body))
    files = [path for directory in PACKAGE_DIRS for path in sorted((package.sql_root() / directory).glob("*.sql"))]
    for path in files:
        statements.extend(dynamic_sql.execute_statements(path.relative_to(REPO).as_posix(), path.read_text()))
    guardrail = Guardrail(
        name="dynamic_sql_format", rule="no dynamic SQL built without format() with %I/%L",
        checked=f"{len(bodies)} plpgsql bodies from pg_proc.prosrc, {len(files)} files of sql/; "
                f"{len(statements)} EXECUTE statements: "
                + ("; ".join(f"{s.source}: {s.sql} ({s.reason})" for s in statements) or "none"),
    )
    guardrail.offenders = [{"object": s.source, "detail": f"EXECUTE {s.sql}: {s.reason}"}
                           for s in statements if not s.passed]
    return guardrail


def table_grants_guardrail(conn: psycopg.Connection, checked: str) -> Guardrail:
    """Run in one transaction with the declared matrix (a temporary table), then rolled back."""
    conn.execute(DECLARED_PRIVILEGES.read_text())
    rows = conn.execute(db.named_sql("guardrail_table_grants")).fetchall()
    conn.rollback()
    return Guardrail(name="table_owner_and_grants",
                     rule="every relation of the package has the schema owner (no superuser, no runtime role) "
                          "and exactly the grants sql/tests/_declared_privileges.sql declares",
                     checked=checked, offenders=[{"object": o, "detail": d} for o, d in rows])


def sqlfluff(output: Path) -> Guardrail:
    """`sqlfluff lint sql runner/sql`, its report written to `output`."""
    command = [sys.executable, "-m", "sqlfluff", "lint", "sql", "runner/sql"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    output.write_text(f"$ {' '.join(command[1:])}\n{result.stdout}{result.stderr}exit code {result.returncode}\n")
    offenders = [] if result.returncode == 0 else [
        {"object": line.removeprefix("== [").split("]")[0],
         "detail": "sqlfluff violations, see guardrails/sqlfluff.txt"}
        for line in result.stdout.splitlines() if line.startswith("== [")
    ] or [{"object": "sqlfluff", "detail": f"exit code {result.returncode}"}]
    return Guardrail(name="sqlfluff", rule="sqlfluff lint sql runner/sql is clean",
                     checked="sql/ and runner/sql/", offenders=offenders)
