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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from runner import db, environment
from runner.clusters import scratch
from runner.evidence import guardrails, manifest, privileges, proof_results, role_usage
from runner.evidence import summary as summary_mod

REPO = environment.REPO
# Every proof but the HA ones (marker ha): those start etcd, Patroni and PgBouncer on TCP and take
# minutes; `make prove-ha` runs them (and CI, through make test). --pytest-args="tests/ha -m ha"
# puts them in a bundle.
DEFAULT_SELECTION = ("tests", "-m", "not ha")
EVIDENCE_TEST = "tests/evidence/test_evidence.py"


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
        collected = _collect_reports(Path(staging), run.bundle / "proofs")
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
    with scratch.server() as server, scratch.database(server.url, "outbox_evidence", prepared=False,
                                                     admin_url=server.admin_url) as url:
        run.where, run.scratch_database = server.where, str(conninfo_to_dict(url).get("dbname", ""))
        run.snapshots.append(privileges.snapshot(url, "before_migrate"))
        _migrate(url, run)
        run.snapshots.append(privileges.snapshot(url, "after_migrate"))
        run.settings = environment.server_settings(url)
        run.checks.extend(guardrails.static_guardrails(url))
        say("evidence: guardrails " + ", ".join(f"{g.name} {g.status}" for g in run.checks))
        run.pytest_exit = _run_pytest(run, selection, _pytest_env(url, server, staging))
        run.snapshots.append(privileges.snapshot(url, "after_proofs"))


def _migrate(url: str, run: Run) -> None:
    lines: list[str] = []
    scratch.prepare(url, say=lines.append)
    lines.append("granted the runtime roles to the login (runner/clusters/scratch.py, as for every scratch database), "
                 "so the proofs can SET ROLE")
    (run.bundle / "proofs" / "migrate.log").write_text("\n".join(lines) + "\n")
    run.commands += ["outbox migrate (on the scratch database)", "GRANT <each runtime role> TO CURRENT_USER"]


def _pytest_env(url: str, server: scratch.Server, staging: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOX_TEST_")}
    env.update(OUTBOX_TEST_DATABASE_URL=url, OUTBOX_REPORTS_DIR=str(staging))
    if server.cluster is not None and server.cluster.workdir is not None:
        env["OUTBOX_TEST_CLUSTER_DIR"] = str(server.cluster.workdir)
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
             "hold a table lock, ALTER SYSTEM), read the catalog, or read back with literal SELECTs what the "
             "proof's runtime-role calls wrote; "
             "the payment API is reached through a runtime role (role_usage/code_scan.json)",
        checked=f"{len(uses)} connections and role switches in runner/ and tests/: "
                f"{sum(u.kind == 'role_switch' for u in uses)} role switches, "
                f"{sum(u.kind == 'owner_connection' for u in uses)} owner connections, "
                f"{sum(u.kind == 'superuser_connection' for u in uses)} superuser (admin_url) uses",
        offenders=role_usage.verdict(uses),
    )


def _collect_reports(staging: Path, into: Path) -> dict[str, Any]:
    """Everything the proofs wrote under the reports directory, into proofs/. Expected: proofs/
    (the records) when any test wrote a record, and every directory a record says its proof wrote
    (ProofRecord.report_directory); missing is what was expected and is not there."""
    present: dict[str, list[str]] = {}
    for source in sorted(p for p in staging.iterdir()):
        destination = into / ("records" if source.name == "proofs" else source.name)
        if source.is_dir():
            if any(source.rglob("*")):
                present[source.name] = _copy_tree(source, destination)
        else:
            shutil.copy2(source, destination)
            present[source.name] = [source.name]
    records = [json.loads(path.read_text()) for path in sorted((staging / "proofs").glob("*.json"))]
    expected = {"proofs"} if records else set()
    expected.update(name for record in records for name in record.get("reports", []))
    return {"present": present, "missing": sorted(expected - present.keys())}


def _copy_tree(source: Path, destination: Path) -> list[str]:
    shutil.copytree(source, destination, dirs_exist_ok=True)
    return sorted(p.relative_to(destination).as_posix() for p in destination.rglob("*") if p.is_file())


def _finish(run: Run, git: dict[str, Any], collected: dict[str, Any], say: Callable[[str], None]) -> bool:
    _write_snapshots(run)
    proofs = proof_results.read(run.bundle / "proofs" / "junit.xml", run.bundle / "proofs" / "records", run.bundle)
    for check in run.checks:
        (run.bundle / "guardrails" / f"{check.name}.json").write_text(json.dumps(check.as_json(), indent=2) + "\n")
    passed = (not run.errors and run.pytest_exit == 0 and proofs.passed and not collected["missing"]
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
    for before, after in zip(run.snapshots, run.snapshots[1:], strict=False):
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
