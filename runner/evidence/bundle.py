"""outbox evidence: runs the guardrails and the proofs and writes a bundle a stranger can check.

The bundle, reports/<UTC timestamp>-<short sha>/, holds run.json, guardrails/, role_usage/, proofs/,
summary.md and MANIFEST.sha256. The proofs run in a pytest subprocess against a scratch database
this run creates (on the embedded cluster, or on the server DATABASE_URL names), so the privilege
matrix read after the proofs is of the very database they used. A failed proof or guardrail still
yields a complete bundle that says FAILED; the caller then exits non-zero.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from runner import cluster, db, environment, migrate
from runner.evidence import guardrails, manifest, privileges, proof_results, role_usage
from runner.evidence import summary as summary_mod

REPO = environment.REPO
EXPECTED_REPORTS = ("proofs", "phase4", "phase5", "isolation", "history")
DEFAULT_SELECTION = ("tests",)
EVIDENCE_TEST = "tests/evidence/test_evidence.py"


@dataclass
class Target:
    server_url: str
    cluster: cluster.EmbeddedCluster | None
    where: str


@dataclass
class Run:
    """What the run did, in the order it did it; becomes run.json."""

    bundle: Path
    started: datetime
    commands: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checks: list[guardrails.Guardrail] = field(default_factory=list)
    snapshots: list[privileges.Snapshot] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    pytest_exit: int | None = None
    where: str = ""
    scratch_database: str = ""


@contextmanager
def target_server() -> Iterator[Target]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield Target(server_url=url, cluster=None, where="DATABASE_URL")
        return
    with cluster.EmbeddedCluster() as embedded:
        yield Target(server_url=embedded.database_url, cluster=embedded, where="embedded cluster")


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A database of this run's own, dropped at the end: the data DATABASE_URL names is never touched."""
    name = f"outbox_evidence_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with db.connection(server_url, application_name="outbox evidence", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with db.connection(server_url, application_name="outbox evidence", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def build(pytest_args: list[str] | None = None, reports_root: Path = REPO / "reports",
          say: Callable[[str], None] = print) -> tuple[Path, bool]:
    """Write a bundle; returns its directory and whether everything passed."""
    started = datetime.now(UTC)
    git = environment.git_state()
    run = Run(bundle=_new_bundle_dir(reports_root, f"{started:%Y%m%dT%H%M%SZ}-{git['short']}"), started=started)
    run.commands.append(" ".join(["outbox", *sys.argv[1:]]) if sys.argv else "outbox evidence")
    say(f"evidence: writing {run.bundle}")
    with tempfile.TemporaryDirectory(prefix="outbox-evidence-") as staging:
        try:
            _database_phase(run, list(pytest_args or DEFAULT_SELECTION), Path(staging), say)
        except Exception as exc:  # noqa: BLE001 - the bundle records any failure; evidence of failure is evidence
            run.errors.append(f"{type(exc).__name__}: SQLSTATE {db.sqlstate(exc)}: {exc}"
                              if db.sqlstate(exc) else f"{type(exc).__name__}: {exc}")
        collected = _collect_reports(Path(staging), run)
    return run.bundle, _finish(run, git, collected, say)


def _new_bundle_dir(root: Path, name: str) -> Path:
    bundle, suffix = root / name, 1
    while bundle.exists():
        suffix += 1
        bundle = root / f"{name}-{suffix}"
    for part in ("guardrails", "role_usage", "proofs"):
        (bundle / part).mkdir(parents=True)
    return bundle


def _database_phase(run: Run, selection: list[str], staging: Path, say: Callable[[str], None]) -> None:
    run.checks.append(guardrails.sqlfluff(run.bundle / "guardrails" / "sqlfluff.txt"))
    run.commands.append("python -m sqlfluff lint sql runner/sql")
    run.checks.append(_code_scan(run.bundle / "role_usage"))
    with target_server() as target, scratch_database(target.server_url) as url:
        run.where, run.scratch_database = target.where, conninfo_to_dict(url).get("dbname", "")
        run.snapshots.append(privileges.snapshot(url, "before_migrate"))
        _migrate(url, run)
        run.snapshots.append(privileges.snapshot(url, "after_migrate"))
        run.settings = environment.server_settings(url)
        run.checks.extend(guardrails.static_guardrails(url))
        say("evidence: guardrails " + ", ".join(f"{g.name} {g.status}" for g in run.checks))
        run.pytest_exit = _run_pytest(run, selection, _pytest_env(url, target, staging))
        run.snapshots.append(privileges.snapshot(url, "after_proofs"))


def _migrate(url: str, run: Run) -> None:
    lines: list[str] = []
    migrate.migrate(url, say=lines.append)
    with db.connection(url, application_name="outbox evidence", autocommit=True) as conn:
        conn.execute(db.named_sql("grant_runtime_roles_to_login"))
    lines.append("granted the runtime roles to the login (runner/sql/grant_runtime_roles_to_login.sql), "
                 "as tests/conftest.py does, so the proofs can SET ROLE")
    (run.bundle / "proofs" / "migrate.log").write_text("\n".join(lines) + "\n")
    run.commands += ["outbox migrate (on the scratch database)", "runner/sql/grant_runtime_roles_to_login.sql"]


def _pytest_env(url: str, target: Target, staging: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOX_TEST_")}
    env.update(OUTBOX_TEST_DATABASE_URL=url, OUTBOX_REPORTS_DIR=str(staging))
    if target.cluster is not None and target.cluster.workdir is not None:
        env["OUTBOX_TEST_CLUSTER_DIR"] = str(target.cluster.workdir)
    return env


def _run_pytest(run: Run, selection: list[str], env: dict[str, str]) -> int:
    """pytest in a subprocess, its output teed to proofs/pytest.log and to our stdout."""
    proofs = run.bundle / "proofs"
    command = [sys.executable, "-m", "pytest", *selection, "-v", "-p", "no:cacheprovider", f"--rootdir={REPO}",
               "-c", str(REPO / "pyproject.toml"), f"--ignore={EVIDENCE_TEST}", f"--junitxml={proofs / 'junit.xml'}"]
    run.commands.append(" ".join(["python", *command[1:]]))
    with (proofs / "pytest.log").open("w") as log, subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        log.write(f"$ {' '.join(command)}\n")
        for line in process.stdout or []:
            log.write(line)
            sys.stdout.write(line)
        sys.stdout.flush()
    return process.returncode


def _code_scan(directory: Path) -> guardrails.Guardrail:
    uses = role_usage.scan(REPO)
    (directory / "code_scan.json").write_text(json.dumps([u.as_json() for u in uses], indent=2) + "\n")
    (directory / "code_scan.tsv").write_text("".join(
        "\t".join(row) + "\n" for row in [("file:line", "function", "kind", "purpose", "detail"),
                                           *((f"{u.file}:{u.line}", u.function, u.kind, u.purpose or "-", u.detail)
                                             for u in uses)]))
    return guardrails.Guardrail(
        name="owner_access_only_in_setup",
        rule="in tests/, owner connections only TRUNCATE, seed or set up, inject a fault (terminate a backend, "
             "hold a table lock, ALTER SYSTEM), or read the catalog; "
             "the payment API is reached through a runtime role (role_usage/code_scan.json)",
        checked=f"{len(uses)} connections and role switches in runner/ and tests/: "
                f"{sum(u.kind == 'role_switch' for u in uses)} role switches, "
                f"{sum(u.kind == 'owner_connection' for u in uses)} owner connections, "
                f"{sum(u.kind == 'superuser_connection' for u in uses)} superuser (admin_url) uses",
        offenders=role_usage.verdict(uses),
    )


def _collect_reports(staging: Path, run: Run) -> dict[str, Any]:
    """Everything the tests wrote under the reports directory, into proofs/; what was expected but missing."""
    present: dict[str, list[str]] = {}
    for name in EXPECTED_REPORTS:
        source = staging / name
        if not source.is_dir():  # a writer that ignored OUTBOX_REPORTS_DIR: take its files from this run only
            source = _recent_copy(REPO / "reports" / name, staging / f"_recent_{name}", run.started)
        if source is not None and any(source.rglob("*")):
            present[name] = _copy_tree(source, run.bundle / "proofs" / ("records" if name == "proofs" else name))
    for other in sorted(p for p in staging.iterdir() if p.name not in EXPECTED_REPORTS and not p.name.startswith("_")):
        destination = run.bundle / "proofs" / other.name
        if other.is_dir():
            present[other.name] = _copy_tree(other, destination)
        else:
            shutil.copy2(other, destination)
            present[other.name] = [other.name]
    return {"present": present, "missing": [name for name in EXPECTED_REPORTS if name not in present]}


def _recent_copy(source: Path, destination: Path, since: datetime) -> Path | None:
    if not source.is_dir():
        return None
    for path in source.rglob("*"):
        if path.is_file() and path.stat().st_mtime >= since.timestamp():
            target = destination / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return destination if destination.is_dir() else None


def _copy_tree(source: Path, destination: Path) -> list[str]:
    shutil.copytree(source, destination, dirs_exist_ok=True)
    return sorted(p.relative_to(destination).as_posix() for p in destination.rglob("*") if p.is_file())


def _finish(run: Run, git: dict[str, Any], collected: dict[str, Any], say: Callable[[str], None]) -> bool:
    _write_snapshots(run)
    proofs = proof_results.read(run.bundle / "proofs" / "junit.xml", run.bundle / "proofs" / "records", run.bundle)
    for check in run.checks:
        (run.bundle / "guardrails" / f"{check.name}.json").write_text(json.dumps(check.as_json(), indent=2) + "\n")
    passed = (not run.errors and run.pytest_exit == 0 and proofs.passed
              and all(check.status == "PASS" for check in run.checks))
    document = _run_json(run, git, proofs, collected, passed)
    (run.bundle / "run.json").write_text(json.dumps(document, indent=2) + "\n")
    (run.bundle / "summary.md").write_text(summary_mod.render(document, run.checks, proofs, collected))
    manifest.write(run.bundle)
    say(f"evidence: {document['status']}: {run.bundle} (verify with: outbox evidence verify {run.bundle})")
    return passed


def _write_snapshots(run: Run) -> None:
    directory = run.bundle / "role_usage"
    for snap in run.snapshots:
        (directory / f"privileges_{snap.label}.tsv").write_text(privileges.privileges_tsv(snap))
        (directory / f"roles_{snap.label}.tsv").write_text(privileges.roles_tsv(snap))
    for before, after in zip(run.snapshots, run.snapshots[1:]):
        for kind in ("privileges", "roles"):
            lines = privileges.diff(getattr(before, kind), getattr(after, kind))
            (directory / f"diff_{kind}_{before.label}__{after.label}.txt").write_text(
                "".join(line + "\n" for line in lines) or "no difference\n")
    if len(run.snapshots) == 3:
        _, migrated, proved = run.snapshots
        changes = ([{"object": line, "detail": "privilege changed by the proofs"}
                    for line in privileges.diff(migrated.privileges, proved.privileges)]
                   + [{"object": line, "detail": "role changed by the proofs"}
                      for line in privileges.diff(migrated.roles, proved.roles)])
        run.checks.append(guardrails.Guardrail(
            name="proofs_change_no_privileges",
            rule="the privilege matrix and the roles after the proofs equal those after migrate",
            checked=f"{len(proved.privileges)} privileges, {len(proved.roles)} roles", offenders=changes))
    else:
        run.errors.append(f"only {len(run.snapshots)} of 3 privilege snapshots were taken")


def _run_json(run: Run, git: dict[str, Any], proofs: proof_results.ProofRun, collected: dict[str, Any],
              passed: bool) -> dict[str, Any]:
    return {
        "bundle": run.bundle.name,
        "status": "PASSED" if passed else "FAILED",
        "started_utc": run.started.isoformat(timespec="seconds"),
        "ended_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git,
        "commands": run.commands,
        "random_seeds": _seeds(proofs),
        "versions": environment.versions(),
        "server": run.settings,
        "database": {"where": run.where, "scratch_database": run.scratch_database},
        "host": environment.host(),
        "pytest_exit_code": run.pytest_exit,
        "proofs": proofs.counts,
        "proof_records_without_test": proofs.orphan_records,
        "guardrails": {check.name: check.status for check in run.checks},
        "reports_missing": collected["missing"],
        "errors": run.errors,
    }


def _seeds(proofs: proof_results.ProofRun) -> dict[str, Any]:
    """PYTHONHASHSEED, and every observed value a proof recorded under a name containing 'seed'."""
    seeds: dict[str, Any] = {"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED")}
    for result in proofs.results:
        observed = (result.record or {}).get("observed", {})
        found = {key: value for key, value in observed.items() if "seed" in key.lower()}
        if found:
            seeds[result.name] = found
    return seeds


def verify(bundle: Path) -> manifest.Verification:
    return manifest.verify(bundle)
