"""`outbox lint plpgsql`: plpgsql_check over every plpgsql function of schema payment_outbox.

sqlfluff cannot see inside `$$` bodies. plpgsql_check compiles each body against the migrated
catalog and reports what plpgsql itself finds only when a line runs: unknown columns, type
mismatches, hidden casts, unused variables and parameters, unsanitised dynamic SQL, a volatility
the body does not need. The functions are read from the catalog of a scratch database migrated
from sql/, so a new function is checked without being listed anywhere. Every warning class is on
and a comment in a body cannot switch a check off: a warning is accepted only in ACCEPTED below,
with its reason; an acceptance that no longer matches anything is reported too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from runner import db
from runner.clusters import embedded as cluster
from runner.clusters import scratch

DEBIAN_PACKAGE = "postgresql-{major}-plpgsql-check"


@dataclass(frozen=True)
class Accepted:
    """A plpgsql_check warning the package keeps on purpose."""

    function: str  # as regprocedure prints it: payment_outbox.name(argument types)
    message: str  # plpgsql_check's message, exactly
    why: str


# Empty: every function passes every check. Add an entry only with a reason a reviewer accepts.
ACCEPTED: tuple[Accepted, ...] = ()


@dataclass(frozen=True)
class Finding:
    function: str
    level: str
    sqlstate: str
    message: str
    relation: str | None = None
    lineno: int | None = None
    statement: str | None = None
    detail: str | None = None
    hint: str | None = None
    query: str | None = None

    def describe(self) -> str:
        where = self.function + (f" on {self.relation}" if self.relation else "")
        if self.lineno is not None:
            where += f" line {self.lineno}" + (f" ({self.statement})" if self.statement else "")
        lines = [f"{where}: {self.level} {self.sqlstate}: {self.message}"]
        lines += [f"    {label}: {text}" for label, text in
                  (("query", self.query), ("detail", self.detail), ("hint", self.hint)) if text]
        return "\n".join(lines)


@dataclass(frozen=True)
class Result:
    functions: list[str]
    findings: list[Finding]


class LintError(RuntimeError):
    """The lint could not run; the message says what to install or set."""


def missing_extension_message(major: int) -> str:
    package = DEBIAN_PACKAGE.format(major=major)
    return (f"the PostgreSQL extension plpgsql_check is not installed for the server (PostgreSQL {major}). "
            f"Install the Debian package {package} (apt-get install {package}); .ci/run installs it in CI.")


def install_extension(admin_url: str) -> None:
    """CREATE EXTENSION plpgsql_check in the database at `admin_url`, a superuser's connection."""
    with db.connection(admin_url, application_name="outbox lint plpgsql", autocommit=True) as conn:
        available, major = conn.execute(db.named_sql("lint_plpgsql_check_available")).fetchone() or (False, 0)
        if not available:
            raise LintError(missing_extension_message(major))
        try:
            conn.execute(db.named_sql("lint_plpgsql_extension"))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise LintError("creating the extension plpgsql_check needs a superuser, and DATABASE_URL's user is "
                            "not one: unset DATABASE_URL (the lint then starts a throwaway cluster) or point it at "
                            f"a superuser. ({exc})") from exc


def check(url: str) -> Result:
    """plpgsql_check's findings on every plpgsql function of the package in the database at `url`."""
    findings: list[Finding] = []
    with db.connection(url, application_name="outbox lint plpgsql", autocommit=True) as conn:
        targets = conn.execute(db.named_sql("lint_plpgsql_functions")).fetchall()
        if not targets:
            raise LintError("schema payment_outbox holds no plpgsql function: is the database migrated?")
        for function_oid, function, relation_oid, relation in targets:
            try:
                rows = conn.execute(db.named_sql("lint_plpgsql_check"),
                                    {"function_oid": function_oid, "relation_oid": relation_oid}).fetchall()
            except psycopg.Error as exc:  # e.g. a trigger function that no trigger fires
                findings.append(Finding(function=function, level="error", sqlstate=db.sqlstate(exc) or "",
                                        message=f"plpgsql_check cannot check it: {exc}", relation=relation))
                continue
            findings += [Finding(function=function, relation=relation, lineno=lineno, statement=statement,
                                 sqlstate=sqlstate, message=message, detail=detail, hint=hint, level=level,
                                 query=query)
                         for lineno, statement, sqlstate, message, detail, hint, level, query in rows]
    return Result(functions=sorted({target[1] for target in targets}), findings=findings)


def check_package() -> Result:
    """Migrate a scratch database (DATABASE_URL's server, else a throwaway cluster) and check it."""
    try:
        with scratch.server() as server, scratch.database(server.url, "outbox_lint", admin_url=server.admin_url) as url:
            admin_url = url if server.cluster is None else make_conninfo(
                server.cluster.admin_url, dbname=conninfo_to_dict(url)["dbname"])
            install_extension(admin_url)
            return check(url)
    except cluster.ClusterError as exc:
        raise LintError(f"the throwaway cluster did not start: {exc}") from exc


def report(result: Result, accepted: tuple[Accepted, ...], say: Callable[[str], None]) -> int:
    """Print the findings; 0 when each one is accepted and each acceptance still matches one."""
    used: set[Accepted] = set()
    failures = 0
    for finding in result.findings:
        match = next((a for a in accepted if (a.function, a.message) == (finding.function, finding.message)), None)
        if match is None:
            failures += 1
            say(finding.describe())
        else:
            used.add(match)
            say(f"accepted: {finding.describe()}\n    why: {match.why}")
    for stale in (a for a in accepted if a not in used):
        failures += 1
        say(f"{stale.function}: the accepted warning {stale.message!r} no longer occurs: remove it from ACCEPTED")
    say(f"plpgsql_check: {len(result.functions)} plpgsql functions, {len(result.findings)} findings, "
        f"{len(used)} accepted: {'FAILED' if failures else 'OK'}")
    return 1 if failures else 0


def main(say: Callable[[str], None] = print) -> int:
    return report(check_package(), ACCEPTED, say)
