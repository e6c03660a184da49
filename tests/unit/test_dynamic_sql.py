"""The dynamic SQL guardrail's judgement of EXECUTE statements, and the manifest's format."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runner.evidence import dynamic_sql, manifest

BODY = """
BEGIN
    -- EXECUTE 'a comment' || v_x;
    PERFORM 'EXECUTE inside a string';
    EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
    EXECUTE 'SET LOCAL lock_timeout = 0';
    EXECUTE 'SELECT * FROM ' || p_table;
    EXECUTE format('SELECT %s', p_value) INTO v_out;
    EXECUTE v_sql USING p_x;
    RETURN QUERY EXECUTE format('SELECT * FROM %I.%I WHERE x = %L', a, b, c);
    EXECUTE format(v_template, a);
    EXECUTE format('SELECT %1$I', a) || ' x';
    FOR r IN EXECUTE format('SELECT %L', q) LOOP NULL; END LOOP;
    GRANT EXECUTE ON FUNCTION f() TO r;
END"""


def test_each_execute_is_judged() -> None:
    found = [(s.sql, s.passed) for s in dynamic_sql.execute_statements("f", BODY)]
    assert found == [
        ("format ( 'CREATE ROLE %I NOLOGIN' , v_role )", True),
        ("'SET LOCAL lock_timeout = 0'", True),
        ("'SELECT * FROM ' || p_table", False),
        ("format ( 'SELECT %s' , p_value )", False),
        ("v_sql", False),
        ("format ( 'SELECT * FROM %I.%I WHERE x = %L' , a , b , c )", True),
        ("format ( v_template , a )", False),
        ("format ( 'SELECT %1$I' , a ) || ' x'", False),
        ("format ( 'SELECT %L' , q )", True),
    ]


def test_do_blocks_in_files_are_scanned() -> None:
    text = "DO $body$ BEGIN EXECUTE 'DROP TABLE ' || v_name; END $body$;\nGRANT EXECUTE ON FUNCTION f() TO r;\n"
    found = [(s.sql, s.passed) for s in dynamic_sql.execute_statements("file", text)]
    assert found == [("'DROP TABLE ' || v_name", False)]


@pytest.mark.parametrize("name", ["plain.txt", "with space.json", "test_x[param].json"])
def test_manifest_is_sha256sum_format(tmp_path: Path, name: str) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / name).write_text("evidence\n")
    manifest.write(tmp_path)
    result = subprocess.run(["sha256sum", "--strict", "-c", manifest.NAME], cwd=tmp_path, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert manifest.verify(tmp_path).ok
