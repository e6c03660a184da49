"""`outbox lint migrations`: squawk's warnings on sql/tables/, each accepted in .squawk.toml or failing."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.lint import squawk

UNSAFE = "-- A new migration with one warning on line 2.\nCREATE INDEX t_a_idx ON payment_outbox.t (a);\n"


def test_the_migrations_pass_with_their_accepted_warnings() -> None:
    lines: list[str] = []
    assert squawk.main(lines.append) == 0, "\n".join(lines)


def test_every_acceptance_names_a_migration_that_exists() -> None:
    files = {path.name for path in squawk.MIGRATIONS.glob("*.sql")}
    assert {file for file, _ in squawk.accepted()} <= files


def test_a_new_warning_fails_with_its_file_and_line(tmp_path: Path) -> None:
    migration = tmp_path / "0099_unsafe.sql"
    migration.write_text(UNSAFE)
    found = squawk.findings([migration])
    assert ("0099_unsafe.sql", 2, "require-lock-timeout") in {(f.file, f.line, f.rule) for f in found}, found
    assert squawk.report(found, squawk.accepted(), lambda line: None) == 1


def test_an_acceptance_is_per_file_and_rule() -> None:
    found = [squawk.Finding(file="0099_x.sql", line=2, rule="ban-drop-column", message="m")]
    assert squawk.report(found, {("0099_x.sql", "ban-drop-column"): "why"}, lambda line: None) == 0
    assert squawk.report(found, {("0098_y.sql", "ban-drop-column"): "why"}, lambda line: None) == 1
    assert squawk.report([], {("0099_x.sql", "ban-drop-column"): "why"}, lambda line: None) == 1, "stale"


def test_an_acceptance_needs_a_reason(tmp_path: Path) -> None:
    config = tmp_path / ".squawk.toml"
    config.write_text('[accepted."0099_x.sql"]\nban-drop-column = " "\n')
    with pytest.raises(squawk.LintError, match="needs a reason"):
        squawk.accepted(config)
