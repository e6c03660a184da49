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

# Setup includes planting damage as the owner (UPDATE, DELETE, DETACH or DROP of a package table):
# the proofs that check_invariants() or a refusal names it start from it.
SETUP = re.compile(r"TRUNCATE|INSERT|COPY|CREATE (DATABASE|ROLE|TABLE|SCHEMA|FUNCTION|TRIGGER)|"
                   r"\bUPDATE\s+payment_outbox\.|DELETE FROM payment_outbox\.|ALTER TABLE payment_outbox\.|"
                   r"DROP TABLE payment_outbox\.|"
                   r"DROP (DATABASE|ROLE|SCHEMA|TRIGGER)|GRANT|REVOKE|ALTER DATABASE|"
                   r"migrate\.migrate|install_helpers|create_migrated_database|drop_database|empty_package_tables|"
                   r"scratch\.(prepare|create_database|drop_database)", re.IGNORECASE)
# A fault proof's own action on the server: a connection that terminates a backend, holds a table
# lock, changes a server setting, or runs the VACUUM autovacuum would run (a proof of the steady
# state after dead rows, which it cannot wait for). Checked after API, so a fault helper that also
# calls the API is still flagged.
FAULT = re.compile(r"pg_terminate_backend|pg_cancel_backend|LOCK\s+TABLE|ALTER\s+SYSTEM|pg_reload_conf|\bVACUUM\b|"
                   r"_lock_package|_take_package_lease|ServerUnreachable", re.IGNORECASE)
# The package's own jobs that run as the owner in production (retention, partition maintenance,
# the ledger conversion), called directly by a proof that races them with runtime-role calls.
OWNER_JOB = re.compile(r"_begin_partition_retirement|_retire_partition|BEGIN_RETIREMENT|ensure_attempt_partitions")
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
    kind: str  # role_switch | role_login | owner_connection | superuser_connection
    detail: str
    purpose: str  # owner connections in tests/: setup | fixture | fault | owner-job | catalog | read-back |
    #                api-as-owner | unexplained

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
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}
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
            purpose = _purpose(text, _in_fixture(node, parents), _reads_back(scope, constants))
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
        login = _login_of(_arg_node(node, 0, "url"))
        if login:
            return "role_login", f"{callee}({_arg(node, 0, 'url')}) as {login}"
        return "owner_connection", f"{callee}({_arg(node, 0, 'url')}) as the login of the URL"
    return "role_switch", f"{callee}(..., {role})"


def _login_of(url: ast.AST | None) -> str:
    """The login a URL names when it is built for one: a cluster's `url('<runtime role>')` (the
    HA and Citus clusters log in as a login role that is a member of that runtime role, since a
    delegated Citus call cannot SET ROLE), or make_conninfo(..., user=<login>). Empty: the URL's
    own login, the owner."""
    if not isinstance(url, ast.Call):
        return ""
    name = url.func.attr if isinstance(url.func, ast.Attribute) else getattr(url.func, "id", "")
    if name == "url" and url.args and isinstance(url.args[0], ast.Constant) and isinstance(url.args[0].value, str):
        return f"a login member of outbox_{url.args[0].value}"
    if name == "make_conninfo":
        user = _keyword(url, "user")
        return f"the login {user}" if user else ""
    return ""


def _arg_node(call: ast.Call, position: int, keyword: str) -> ast.AST | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


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


def _purpose(text: str, in_fixture: bool, reads_back: bool = False) -> str:
    if API.search(text):
        return "api-as-owner"
    if FAULT.search(text):
        return "fault"
    if OWNER_JOB.search(text):
        return "owner-job"
    if SETUP.search(text):
        return "setup"
    if in_fixture:
        return "fixture"
    if CATALOG.search(text):
        return "catalog"
    if reads_back:
        return "read-back"
    return "unexplained"


def _reads_back(scope: ast.AST | None, constants: dict[str, str]) -> bool:
    """A `with` block whose every statement sent is a literal SELECT: it reads back what a proof's
    runtime-role calls wrote (no runtime role may read the queue or the key register), and can
    change nothing. A statement held in a variable, or any other statement, is not a read-back."""
    if not isinstance(scope, ast.With):
        return False
    sent = [call.args[0] for call in ast.walk(scope) if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute) and call.func.attr in ("execute", "executemany") and call.args]
    return bool(sent) and all(_literal_select(statement, constants) for statement in sent)


def _literal_select(statement: ast.AST, constants: dict[str, str]) -> bool:
    """A SELECT written in the block, or in a string constant of the module named there."""
    if isinstance(statement, ast.Name) and statement.id in constants:
        head = constants[statement.id]
    elif isinstance(statement, ast.Constant) and isinstance(statement.value, str):
        head = statement.value
    elif isinstance(statement, ast.JoinedStr) and statement.values and isinstance(statement.values[0], ast.Constant):
        head = str(statement.values[0].value)
    else:
        return False
    return bool(re.match(r"\s*SELECT\b", head, re.IGNORECASE)) and ";" not in head


def verdict(uses: list[Use]) -> list[dict[str, Any]]:
    """The owner connections in tests/ that are neither setup, a fault, a catalog read nor a literal
    SELECT reading back what a proof wrote: the offenders."""
    return [{"object": f"{u.file}:{u.line} {u.function}", "detail": f"{u.detail}: {u.purpose}"}
            for u in uses if u.purpose in ("api-as-owner", "unexplained")]
