"""Reading the docs as data: sections by heading, tables as rows of cells, backticked names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
HEADING = re.compile(r"^(#{1,6}) (.*)$", re.MULTILINE)


def section(text: str, heading: str) -> str:
    """The text under the first heading whose title contains `heading`, up to the next heading of
    the same or a higher level (its subsections included)."""
    for match in HEADING.finditer(text):
        if heading in match.group(2):
            level = len(match.group(1))
            rest = text[match.end():]
            for following in HEADING.finditer(rest):
                if len(following.group(1)) <= level:
                    return rest[:following.start()]
            return rest
    raise AssertionError(f"no heading contains {heading!r}")


def sections(text: str, pattern: str) -> dict[str, str]:
    """Every section whose heading matches `pattern` (a regex with one group), by that group."""
    found = {}
    for match in HEADING.finditer(text):
        named = re.search(pattern, match.group(2))
        if named:
            found[named.group(1)] = section(text[match.start():], match.group(2))
    return found


def table_rows(text: str) -> list[list[str]]:
    """The body rows of every markdown table in `text` (not the header, not the separator), each
    as its stripped cells."""
    lines = text.splitlines()
    separator = re.compile(r"\|[-:| ]+\|")
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for i, line in enumerate(lines)
            if line.startswith("|") and not separator.fullmatch(line.strip())
            and not (i + 1 < len(lines) and separator.fullmatch(lines[i + 1].strip()))]


def names(cell: str) -> set[str]:
    """The backticked identifiers of a cell: `name`, `name(...)` gives name."""
    return set(re.findall(r"`([a-z_][a-z0-9_]*)", cell))
