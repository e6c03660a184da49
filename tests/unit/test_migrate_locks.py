"""A versioned file that reads a package table takes its locks before it reads: in its first
statements (LOCK TABLE), or, for a file applied before the rule, in sql/tables/locks.toml."""

from __future__ import annotations

import re
import tomllib

import pytest

from runner.schema import migrate, package

VERSIONED = [f for f in migrate.package_files() if f.kind == "versioned"]
CREATED = re.compile(r"CREATE TABLE payment_outbox\.([a-z0-9_]+)")
READ = re.compile(r"\b(?:FROM|JOIN)\s+payment_outbox\.([a-z0-9_]+)")


def _statements_before_the_first_other(text: str) -> list[str]:
    """The leading LOCK TABLE statements of a file (comments skipped)."""
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    locks = []
    for statement in code.split(";"):
        if not statement.strip().upper().startswith("LOCK TABLE"):
            break
        locks.append(statement.strip())
    return locks


def test_every_declaration_names_a_versioned_file_and_a_known_mode() -> None:
    declared = migrate.lock_declarations()
    assert declared, "sql/tables/locks.toml declares nothing"
    with (package.sql_root() / migrate.LOCKS_FILE).open("rb") as handle:
        names = set(tomllib.load(handle))
    assert names == set(declared), f"declared for files that do not exist: {sorted(names - set(declared))}"


@pytest.mark.parametrize("file", VERSIONED, ids=lambda f: f.name)
def test_a_file_that_reads_an_earlier_table_locks_first(file: migrate.SqlFile) -> None:
    earlier = {name for f in VERSIONED if f.name < file.name for name in CREATED.findall(f.text)}
    read = sorted(set(READ.findall(file.text)) & earlier)
    if not read:
        return
    in_file = _statements_before_the_first_other(file.text)
    declared = migrate.lock_declarations().get(file.name, [])
    assert in_file or declared, (f"{file.name} reads {read} but takes no lock first: begin it with LOCK TABLE "
                                 f"(or, for an applied file, declare the locks in {migrate.LOCKS_FILE})")
