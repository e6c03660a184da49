"""The static guardrails of `outbox evidence` pass on the package and name each planted violation."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from runner.evidence import guardrails
from tests.conftest import Database, Server, create_migrated_database, drop_database
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof

# Each statement breaks one guardrail; run as the owner on a scratch database of this module's own.
VIOLATIONS = [
    "ALTER FUNCTION payment_outbox.list_stuck_dispatching(integer) RESET search_path",
    "GRANT EXECUTE ON FUNCTION payment_outbox._retry_delay(integer) TO PUBLIC",
    """CREATE FUNCTION payment_outbox.planted_dynamic(p_table text) RETURNS void LANGUAGE plpgsql AS $$
       BEGIN
           EXECUTE 'TRUNCATE ' || p_table;
           EXECUTE format('DELETE FROM %s', p_table);
           EXECUTE format('TRUNCATE %I', p_table);
       END $$""",
    "REVOKE EXECUTE ON FUNCTION payment_outbox.planted_dynamic(text) FROM PUBLIC",
    "GRANT SELECT ON payment_outbox.payment_outbox_pending TO outbox_readonly",
    "GRANT UPDATE (state) ON payment_outbox.payment_outbox_attempts TO outbox_executor",
    "REVOKE SELECT ON payment_outbox.payment_outbox_attempts FROM outbox_auditor",
    "GRANT CREATE ON SCHEMA payment_outbox TO outbox_repair",
    "ALTER TABLE payment_outbox.schema_migrations OWNER TO outbox_repair",
]


def offenders(found: list[guardrails.Guardrail]) -> dict[str, list[tuple[str, str]]]:
    return {g.name: [(o["object"], o["detail"]) for o in g.offenders] for g in found}


@pytest.fixture(scope="module")
def violated(server: Server) -> Iterator[Database]:
    created = create_migrated_database(server, prefix="outbox_guardrails")
    try:
        with psycopg.connect(created.url, autocommit=True) as conn:
            for statement in VIOLATIONS:
                conn.execute(statement)
        yield created
    finally:
        drop_database(server, created.name)


def test_the_package_passes_every_guardrail(database: Database, proof: ProofRecord) -> None:
    found = guardrails.static_guardrails(database.url)
    proof.observe(checked={g.name: g.checked for g in found})
    proof.check("every static guardrail passes", want={g.name: "PASS" for g in found},
                have={g.name: g.status for g in found})
    proof.check("four guardrails ran", want=4, have=len(found))


def test_each_planted_violation_is_named(violated: Database, proof: ProofRecord) -> None:
    found = offenders(guardrails.static_guardrails(violated.url))
    proof.check("SECURITY DEFINER without search_path",
                want=[("payment_outbox.list_stuck_dispatching(integer)", "no SET clause")],
                have=found["security_definer_search_path"])
    proof.check("PUBLIC EXECUTE", want=["payment_outbox._retry_delay(integer)"],
                have=[o for o, _ in found["public_execute"]])
    proof.check("dynamic SQL by concatenation and by %s, not by %I", want=[
        ("pg_proc payment_outbox.planted_dynamic(text)",
         "EXECUTE 'TRUNCATE ' || p_table: built without format(): a variable, concatenation or other expression"),
        ("pg_proc payment_outbox.planted_dynamic(text)",
         "EXECUTE format ( 'DELETE FROM %s' , p_table ): format() uses %s; only %I and %L quote"),
    ], have=found["dynamic_sql_format"])
    proof.check("grants beyond and short of the declared matrix", want=[
        ("column payment_outbox_attempts.state", "outbox_executor holds UPDATE, which is not declared"),
        ("table payment_outbox_attempts", "outbox_auditor lacks SELECT, which is declared"),
        ("table payment_outbox_pending", "outbox_readonly holds SELECT, which is not declared"),
    ], have=[item for item in found["table_owner_and_grants"] if item[0] != "table schema_migrations"])
    proof.check("a table owned by a runtime role", want=True,
                have=("table schema_migrations", "owned by outbox_repair, want outbox_owner (the schema owner)")
                in found["table_owner_and_grants"])
