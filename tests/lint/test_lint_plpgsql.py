"""`outbox lint plpgsql` reads every plpgsql function from the catalog and fails on what plpgsql_check finds."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from runner.lint import plpgsql
from tests.conftest import Database, Server, create_migrated_database, drop_database

PLANTED = """
CREATE FUNCTION payment_outbox._lint_planted(p_unused text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, payment_outbox, pg_temp AS $$
DECLARE
    v_unused integer;
BEGIN
    RETURN (SELECT count(*) FROM payment_outbox.payment_outbox_pending AS p WHERE p.no_such_column = 1);
END;
$$;
CREATE FUNCTION payment_outbox._lint_planted_trigger() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, payment_outbox, pg_temp AS $$
BEGIN
    RETURN NULL;
END;
$$;
"""
PLANTED_FUNCTION = "payment_outbox._lint_planted(text)"


@pytest.fixture
def checkable(server: Server) -> Iterator[Database]:
    """A migrated scratch database of the test's own, with plpgsql_check installed."""
    created = create_migrated_database(server, prefix="outbox_lint")
    try:
        try:
            plpgsql.install_extension(make_conninfo(server.admin_url, dbname=created.name))
        except plpgsql.LintError as exc:
            pytest.skip(str(exc))
        yield created
    finally:
        drop_database(server, created.name)


@pytest.fixture
def planted(checkable: Database) -> Database:
    """The scratch database with two faulty functions planted in the package's schema."""
    with psycopg.connect(checkable.url, autocommit=True) as conn:
        conn.execute(PLANTED)
    return checkable


def test_every_package_function_passes_plpgsql_check(checkable: Database) -> None:
    result = plpgsql.check(checkable.url)
    lines: list[str] = []
    assert plpgsql.report(result, plpgsql.ACCEPTED, lines.append) == 0, "\n".join(lines)
    # The append-only trigger function comes from tables/, the rest from functions/: all are read.
    for expected in ("payment_outbox._reject_update_or_delete()",
                     "payment_outbox.enqueue_payment_outbox(text,text,text,text,jsonb)"):
        assert expected in result.functions


def test_planted_faults_fail_the_lint(planted: Database) -> None:
    result = plpgsql.check(planted.url)
    found = {(f.function, f.sqlstate, f.message) for f in result.findings}
    assert (PLANTED_FUNCTION, "42703", 'column p.no_such_column does not exist') in found, found
    assert (PLANTED_FUNCTION, "00000", 'unused variable "v_unused"') in found, found
    assert (PLANTED_FUNCTION, "00000", 'unused parameter "p_unused"') in found, found
    untriggered = [f for f in result.findings if f.function == "payment_outbox._lint_planted_trigger()"]
    assert [f.level for f in untriggered] == ["error"], untriggered
    assert plpgsql.report(result, plpgsql.ACCEPTED, lambda line: None) == 1

    every_one = tuple(plpgsql.Accepted(f.function, f.message, why="planted") for f in result.findings)
    assert plpgsql.report(result, every_one, lambda line: None) == 0, "every finding accepted passes"
    stale = (*every_one, plpgsql.Accepted(PLANTED_FUNCTION, "a warning that never occurs", why="planted"))
    assert plpgsql.report(result, stale, lambda line: None) == 1, "an acceptance that matches nothing fails"


def test_a_missing_extension_names_the_debian_package() -> None:
    assert "apt-get install postgresql-15-plpgsql-check" in plpgsql.missing_extension_message(15)
