"""docs/api.md's SQLSTATE table against sql/: every code the package raises is documented, and
every documented code is raised by the package or says PostgreSQL raises it (issue 21)."""

from __future__ import annotations

import re

from tests.helpers.markdown import DOCS, ROOT, section, table_rows

RAISE = re.compile(r"ERRCODE\s*=\s*'([0-9A-Z]{5})'")
# The package itself (sql/citus/: what `outbox migrate --citus` adds on Citus); sql/tests/ raises
# PT001, the proofs' own failure code.
PACKAGE_DIRS = ("sql/tables", "sql/views", "sql/functions", "sql/roles", "sql/citus", "sql/citus/functions")


def raised_codes() -> dict[str, list[str]]:
    raised: dict[str, list[str]] = {}
    for directory in PACKAGE_DIRS:
        for path in sorted((ROOT / directory).glob("*.sql")):
            for code in RAISE.findall(path.read_text(encoding="utf-8")):
                raised.setdefault(code, []).append(path.relative_to(ROOT).as_posix())
    return raised


def documented_codes() -> dict[str, str]:
    """Each code of the table with its 'raised by' cells joined (a code may have several rows, and
    a row several codes)."""
    documented: dict[str, str] = {}
    for cells in table_rows(section((DOCS / "api.md").read_text(encoding="utf-8"), "SQLSTATEs")):
        for code in re.findall(r"`([0-9A-Z]{5})`", cells[0]):
            documented[code] = f"{documented.get(code, '')} {cells[1]}".strip()
    return documented


def test_the_package_raises_codes() -> None:
    # A guard for the scan itself: a pattern that matched nothing would pass every check below.
    assert {"PO001", "PO020", "PO034"} <= set(raised_codes())


def test_every_code_raised_in_sql_is_documented() -> None:
    documented = documented_codes()
    missing = {code: files for code, files in raised_codes().items() if code not in documented}
    assert missing == {}, f"raised in sql/ but not in docs/api.md's SQLSTATE table: {missing}"


def test_every_documented_code_is_raised_by_the_package_or_by_postgresql() -> None:
    raised = raised_codes()
    unraised = {code: raised_by for code, raised_by in documented_codes().items()
                if code not in raised and "PostgreSQL" not in raised_by}
    assert unraised == {}, f"documented, but nothing in sql/ raises them and PostgreSQL is not named: {unraised}"


def test_every_package_code_documented_is_raised() -> None:
    """A PO code is ours: documented means some file of sql/ raises it."""
    raised = raised_codes()
    assert sorted(c for c in documented_codes() if c.startswith("PO") and c not in raised) == []
