"""Finds the dynamic SQL (EXECUTE) in plpgsql source and judges how each statement is built.

A statement passes when its SQL is a single string literal (static text) or a format() call whose
format string is a literal using only %I and %L (and %%). Anything else - a variable, `||`
concatenation, format() with %s or with a format string that is not a literal - fails: it is
how an identifier or value ends up in SQL unquoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TOKEN = re.compile(
    r"""(?P<comment>--[^\n]*|/\*.*?\*/)
      |(?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*)?\$.*?\$(?P=tag)\$)
      |(?P<string>[Ee]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*')
      |(?P<qident>"(?:[^"]|"")*")
      |(?P<word>[A-Za-z_][A-Za-z_0-9$]*)
      |(?P<punct>::|\|\||[(),;])
      |(?P<other>\S)""",
    re.VERBOSE | re.DOTALL,
)
# One format() placeholder: %[position$][flags][width]type.
PLACEHOLDER = re.compile(r"%(?:\d+\$)?-?(?:\d+|\*(?:\d+\$)?)?([A-Za-z%])")
ENDS_EXPRESSION = {"USING", "INTO", "LOOP", ";"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True)
class ExecuteStatement:
    source: str  # where the body came from: a function signature or a file
    sql: str  # the expression after EXECUTE, as written
    passed: bool
    reason: str


def tokens(body: str) -> list[Token]:
    """The tokens of plpgsql or SQL text, comments dropped; a dollar-quoted string stays one token."""
    found = []
    for match in TOKEN.finditer(body):
        kind = match.lastgroup if match.lastgroup not in (None, "tag") else "dollar"
        if match.group("dollar"):
            kind = "dollar"
        if kind != "comment":
            found.append(Token(kind=kind, text=match.group(0)))
    return found


def execute_statements(source: str, body: str) -> list[ExecuteStatement]:
    """Every EXECUTE statement in `body` and, recursively, in the dollar-quoted bodies inside it."""
    found: list[ExecuteStatement] = []
    items = tokens(body)
    for index, token in enumerate(items):
        if token.kind == "dollar":
            inner = re.sub(r"^\$[A-Za-z_0-9]*\$|\$[A-Za-z_0-9]*\$$", "", token.text)
            found.extend(execute_statements(source, inner))
        elif _is_dynamic_execute(items, index):
            expression = _expression(items, index + 1)
            passed, reason = judge(expression)
            found.append(ExecuteStatement(source=source, sql=" ".join(t.text for t in expression),
                                          passed=passed, reason=reason))
    return found


def _is_dynamic_execute(items: list[Token], index: int) -> bool:
    """EXECUTE as plpgsql's dynamic statement; not GRANT/REVOKE EXECUTE ON, not EXECUTE FUNCTION."""
    if items[index].kind != "word" or items[index].text.upper() != "EXECUTE":
        return False
    following = items[index + 1].text.upper() if index + 1 < len(items) else ";"
    preceding = items[index - 1].text.upper() if index > 0 else ";"
    return following not in ("ON", "FUNCTION", "PROCEDURE", ",") and preceding not in ("GRANT", "REVOKE", ",")


def _expression(items: list[Token], start: int) -> list[Token]:
    depth, taken = 0, []
    for token in items[start:]:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        if depth == 0 and token.text.upper() in ENDS_EXPRESSION:
            break
        taken.append(token)
    return taken


def judge(expression: list[Token]) -> tuple[bool, str]:
    """Whether the SQL an EXECUTE runs is built safely, and why."""
    if len(expression) == 1 and expression[0].kind in ("string", "dollar"):
        return True, "static string literal"
    if not expression or expression[0].text.lower() != "format":
        return False, "built without format(): a variable, concatenation or other expression"
    if len(expression) < 3 or expression[1].text != "(" or expression[-1].text != ")":
        return False, "format() result is combined with something else"
    if _closing_paren(expression, 1) != len(expression) - 1:
        return False, "format() result is combined with something else"
    template = expression[2]
    if template.kind not in ("string", "dollar") or expression[3].text not in (",", ")"):
        return False, "format() string is not a literal"
    kinds = {match.group(1) for match in PLACEHOLDER.finditer(template.text)} - {"%"}
    if kinds - {"I", "L"}:
        return False, f"format() uses {', '.join('%' + k for k in sorted(kinds - {'I', 'L'}))}; only %I and %L quote"
    return True, "format() with %I/%L only" if kinds else "format() with a literal and no placeholders"


def _closing_paren(expression: list[Token], opening: int) -> int:
    depth = 0
    for index in range(opening, len(expression)):
        depth += {"(": 1, ")": -1}.get(expression[index].text, 0)
        if depth == 0:
            return index
    return -1
