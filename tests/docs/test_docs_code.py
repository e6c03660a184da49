"""The docs against the code, without a database (issue 21): every `outbox` command and option
(walked from runner.cli.build_parser()) in docs/operations.md, and the invariant kinds
check_invariants() can report (read from sql/functions/check_invariants.sql) in docs/api.md."""

from __future__ import annotations

import argparse
import re

from runner import cli
from tests.helpers.markdown import DOCS, ROOT, names, section, sections, table_rows

OPERATIONS = DOCS / "operations.md"


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], list[str]]:
    """Every command path below `outbox` (('quarantine', 'list'), ...) with its option strings."""
    found: dict[tuple[str, ...], list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found[(*path, name)] = [option for a in child._actions for option in a.option_strings
                                        if option not in ("-h", "--help")]
                found.update(commands(child, (*path, name)))
    return found


def command_sections() -> dict[str, str]:
    """The section of docs/operations.md about each top-level command: its heading names it as
    `outbox <command>`."""
    return sections(OPERATIONS.read_text(encoding="utf-8"), r"`outbox ([a-z-]+)`")


def test_the_parser_has_commands() -> None:
    assert {("migrate",), ("worker",), ("quarantine", "release")} <= set(commands(cli.build_parser()))


def test_every_command_has_its_section_in_operations() -> None:
    top = {path[0] for path in commands(cli.build_parser())}
    assert sorted(top - set(command_sections())) == []


def test_every_subcommand_and_option_is_in_its_commands_section() -> None:
    documented = command_sections()
    missing = []
    for path, options in commands(cli.build_parser()).items():
        text = documented.get(path[0], "")
        if len(path) > 1 and f"outbox {' '.join(path)}" not in text:
            missing.append(f"outbox {' '.join(path)}")
        missing += [f"outbox {' '.join(path)} {option}" for option in options
                    if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text)]
    assert missing == [], "not in docs/operations.md under the command's heading"


def test_every_option_a_table_documents_exists() -> None:
    """An option table row (`| `--name ...` |`) names an option of its command: a renamed or removed
    option fails here."""
    parsed = commands(cli.build_parser())
    stale = []
    for command, text in command_sections().items():
        options = {o for path, opts in parsed.items() if path[0] == command for o in opts}
        for cells in table_rows(text):
            for option in re.findall(r"`(--[a-z-]+)", cells[0]):
                if option not in options:
                    stale.append(f"outbox {command} {option}")
    assert stale == []


def invariant_kinds() -> set[str]:
    text = (ROOT / "sql/functions/check_invariants.sql").read_text(encoding="utf-8")
    return set(re.findall(r"'([a-z_]+)' AS invariant", text))


def test_every_invariant_kind_is_documented_and_none_other() -> None:
    kinds = invariant_kinds()
    assert len(kinds) >= 18  # a guard for the scan itself
    rows = table_rows(section((DOCS / "api.md").read_text(encoding="utf-8"), "check_invariants"))
    documented = {name for cells in rows for name in names(cells[0])}
    assert (sorted(kinds - documented), sorted(documented - kinds)) == ([], [])
