"""The docs against the catalog of a migrated database (issue 21): the role tables of README.md
and docs/api.md against the grants (which runtime role may EXECUTE which function, SELECT which
relation), and every function, view and table of the schema named in docs/api.md."""

from __future__ import annotations

import re

import psycopg
import pytest

from runner.schema import package
from tests.conftest import Database
from tests.helpers.markdown import DOCS, README, names, section, table_rows

pytestmark = pytest.mark.proof

GRANTS = """
SELECT r.rolname, p.proname AS object
FROM pg_catalog.pg_proc AS p
CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) AS a
INNER JOIN pg_catalog.pg_roles AS r ON a.grantee = r.oid
WHERE p.pronamespace = 'payment_outbox'::regnamespace AND a.privilege_type = 'EXECUTE'
UNION
SELECT r.rolname, c.relname
FROM pg_catalog.pg_class AS c
CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a
INNER JOIN pg_catalog.pg_roles AS r ON a.grantee = r.oid
WHERE c.relnamespace = 'payment_outbox'::regnamespace AND a.privilege_type = 'SELECT'
"""
OBJECTS = """
SELECT p.proname, 'function' FROM pg_catalog.pg_proc AS p WHERE p.pronamespace = 'payment_outbox'::regnamespace
UNION
SELECT c.relname, CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END
FROM pg_catalog.pg_class AS c
WHERE c.relnamespace = 'payment_outbox'::regnamespace AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
"""


def granted(url: str) -> set[tuple[str, str]]:
    """(runtime role, function or relation name) for every EXECUTE and SELECT granted in the schema."""
    roles = set(package.runtime_roles())
    with psycopg.connect(url) as conn:
        return {(role, name) for role, name in conn.execute(GRANTS) if role in roles}


def readme_table() -> set[tuple[str, str]]:
    """(role, name) from README's API table: every backticked name of the first cell, with every
    role of the second."""
    pairs = set()
    for cells in table_rows(section(README.read_text(encoding="utf-8"), "The SQL API")):
        for role in names(cells[1]):
            pairs |= {(role, name) for name in names(cells[0])}
    return pairs


def api_role_table() -> set[tuple[str, str]]:
    pairs = set()
    for cells in table_rows(section((DOCS / "api.md").read_text(encoding="utf-8"), "Roles")):
        (role,) = names(cells[0])
        pairs |= {(role, name) for cell in cells[1:] for name in names(cell)}
    return pairs


def test_readme_api_table_is_the_grants(database: Database) -> None:
    want = granted(database.url)
    assert len(want) > 40  # a guard for the query itself
    have = readme_table()
    assert (sorted(want - have), sorted(have - want)) == ([], [])


def test_api_role_table_is_the_grants(database: Database) -> None:
    want = granted(database.url)
    have = api_role_table()
    assert (sorted(want - have), sorted(have - want)) == ([], [])


def test_every_function_view_and_table_is_in_api_md(database: Database) -> None:
    with psycopg.connect(database.url) as conn:  # reads pg_catalog only
        objects = list(conn.execute(OBJECTS))
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    missing = sorted(f"{kind} {name}" for name, kind in objects
                     if name != "schema_migrations" and not re.search(rf"`{re.escape(name)}[`(]", text))
    assert "function enqueue_payment_outbox" not in missing and len(objects) > 30
    # The migration ledger is the runner's: api.md names it too, but in a list of columns.
    assert missing == []
