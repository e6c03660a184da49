"""A scan of runner/ and tests/ for role switching and owner connections.

Every connection either switches to a runtime role (SET ROLE, role_connection(url, role),
Client.connect(url, role), db.connect(..., role=...)) or stays the login it connected as: the package owner, or on the
embedded cluster the superuser (`admin_url`). Owner access in tests/ is expected only where a
fixture or helper TRUNCATEs, seeds or sets up (DDL, GRANT, migrate), where a fault proof acts on
the server (pg_terminate_backend, LOCK TABLE, ALTER SYSTEM), or where a test reads the catalog; the
payment API is never called on an owner connection. The purpose is read from the
text of the `with` block (or function) the connection is opened in: a heuristic, so the full
list goes into the bundle for a reviewer.
"""

from __future__ import annotations

import ast
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SETUP = re.compile(r"TRUNCATE|INSERT|COPY|CREATE (DATABASE|ROLE|TABLE|SCHEMA|FUNCTION|TRIGGER)|"
                   r"DROP (DATABASE|ROLE|SCHEMA|TRIGGER)|GRANT|REVOKE|ALTER DATABASE|"
                   r"migrate\.migrate|install_helpers|create_migrated_database|drop_database|empty_package_tables|"
                   r"scratch\.(prepare|create_database|drop_database)", re.IGNORECASE)
# A fault proof's own action on the server: a connection that terminates a backend, holds a table
# lock, changes a server setting, or runs the VACUUM autovacuum would run (a proof of the steady
# state after dead rows, which it cannot wait for). Checked after API, so a fault helper that also
# calls the API is still flagged.
FAULT = re.compile(r"pg_terminate_backend|pg_cancel_backend|LOCK\s+TABLE|ALTER\s+SYSTEM|pg_reload_conf|\bVACUUM\b",
                   re.IGNORECASE)
CATALOG = re.compile(r"pg_[a-z_]+|to_reg[a-z]+|schema_migrations|has_[a-z]+_privilege|current_setting|advisory")
API = re.compile(r"(?<!['\"])payment_outbox\.(enqueue_payment_outbox|claim_outbox_batch|complete_outbox_attempt|"
                 r"repair_zombie_attempts|list_stuck_dispatching|check_invariants|item_history)\s*\(|\bClient\s*\(")
SET_ROLE = re.compile(r"\bSET\s+(LOCAL\s+|SESSION\s+)?ROLE\b", re.IGNORECASE)
# The same switch made at connection start, as libpq options (outbox bench hands it to pgbench).
ROLE_OPTION = re.compile(r"-c\s*role=")
CONNECTORS = {"connect", "connection", "role_connection"}


@dataclass(frozen=True)
class Use:
    file: str
    line: int
    function: str
    kind: str  # role_switch | owner_connection | superuser_connection
    detail: str
    purpose: str  # owner connections in tests/: setup | fixture | fault | catalog | api-as-owner | unexplained

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def scan(root: Path, directories: tuple[str, ...] = ("runner", "tests")) -> list[Use]:
    uses: list[Use] = []
    for directory in directories:
        for path in sorted((root / directory).rglob("*.py")):
            uses.extend(scan_file(path, path.relative_to(root).as_posix()))
    return uses


def scan_file(path: Path, name: str) -> list[Use]:
    source = path.read_text()
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    uses = []
    docstrings = {node.value for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    for node in ast.walk(tree):
        kind, detail = _classify(node) if node not in docstrings else (None, "")
        if kind is None:
            continue
        scope = _scope(node, parents)
        text = ast.get_source_segment(source, scope) or "" if scope is not None else ""
        purpose = ""
        if kind == "owner_connection" and name.startswith("tests/"):
            purpose = _purpose(text, _in_fixture(node, parents))
        uses.append(Use(file=name, line=getattr(node, "lineno", 0), function=_function_name(node, parents),
                        kind=kind, detail=detail, purpose=purpose))
    return uses


def _classify(node: ast.AST) -> tuple[str | None, str]:
    if isinstance(node, ast.Attribute) and node.attr == "admin_url" and isinstance(node.ctx, ast.Load):
        return "superuser_connection", "admin_url (superuser on the embedded cluster)"
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and SET_ROLE.search(node.value):
        return "role_switch", f"SQL: {node.value.strip()[:80]}"
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and ROLE_OPTION.search(node.value):
        return "role_switch", f"connection option: {node.value.strip()[:80]}"
    if not isinstance(node, ast.Call):
        return None, ""
    callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    if callee == "set_role":
        return "role_switch", f"set_role({_arg(node, 1, 'role')})"
    if callee not in CONNECTORS:
        return None, ""
    by_position = callee == "role_connection" or _is_client_connect(node)
    role = _arg(node, 1, "role") if by_position else _keyword(node, "role")
    if role in ("None", ""):
        return "owner_connection", f"{callee}({_arg(node, 0, 'url')}) as the login of the URL"
    return "role_switch", f"{callee}(..., {role})"


def _is_client_connect(call: ast.Call) -> bool:
    """Client.connect(url, role, ...): runner.client's connection, its role the second argument."""
    return (isinstance(call.func, ast.Attribute) and call.func.attr == "connect"
            and isinstance(call.func.value, ast.Name) and call.func.value.id == "Client")


def _arg(call: ast.Call, position: int, keyword: str) -> str:
    if len(call.args) > position:
        return ast.unparse(call.args[position])
    return _keyword(call, keyword)


def _keyword(call: ast.Call, keyword: str) -> str:
    return next((ast.unparse(k.value) for k in call.keywords if k.arg == keyword), "")


def _scope(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST | None:
    """The `with` block a connection is opened in, else the enclosing function."""
    current = parents.get(node)
    while current is not None:
        if isinstance(current, (ast.With, ast.FunctionDef, ast.AsyncFunctionDef)):
            return current
        current = parents.get(current)
    return None


def _function_name(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str:
    current = parents.get(node)
    while current is not None:
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return current.name
        current = parents.get(current)
    return "<module>"


def _in_fixture(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    current = parents.get(node)
    while current is not None:
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return any("fixture" in ast.unparse(decorator) for decorator in current.decorator_list)
        current = parents.get(current)
    return False


def _purpose(text: str, in_fixture: bool) -> str:
    if API.search(text):
        return "api-as-owner"
    if FAULT.search(text):
        return "fault"
    if SETUP.search(text):
        return "setup"
    if in_fixture:
        return "fixture"
    if CATALOG.search(text):
        return "catalog"
    return "unexplained"


def verdict(uses: list[Use]) -> list[dict[str, Any]]:
    """The owner connections in tests/ that are neither setup nor a catalog read: the offenders."""
    return [{"object": f"{u.file}:{u.line} {u.function}", "detail": f"{u.detail}: {u.purpose}"}
            for u in uses if u.purpose in ("api-as-owner", "unexplained")]
