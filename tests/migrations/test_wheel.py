"""The wheel carries the SQL package and what a DBA, a worker and an operator run, and nothing of the
tools of a checkout: built from this checkout, installed into a fresh venv away from the checkout,
its `outbox migrate` applies every file; with the SQL gone it says what is missing; a checkout tool
(evidence, bench, lint, releases) says it needs a checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from runner.clusters import scratch
from runner.schema import migrate
from tests.conftest import Server
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof

REPO = Path(__file__).resolve().parents[2]


PIP = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check"]
# In the wheel: the top of runner/ and these subpackages. Not in it: the tools of a checkout.
WHEEL_PACKAGES = ("runner/schema", "runner/worker", "runner/operator")
CHECKOUT_ONLY = ("runner/clusters", "runner/harness", "runner/evidence", "runner/bench", "runner/lint")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of this checkout."""
    work = tmp_path_factory.mktemp("wheel")
    # A build without isolation writes build/ into the tree it builds: a copy, so the checkout stays clean.
    source = shutil.copytree(REPO, work / "source", ignore=shutil.ignore_patterns(
        ".git", ".venv", ".pg", "reports", "build", "*.egg-info", "__pycache__", ".*_cache"))
    subprocess.run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(work / "dist"),
                    str(source)], check=True, cwd=work)
    (built,) = (work / "dist").glob("payment_outbox-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path) -> Path:
    """The `outbox` console script of the wheel, installed with its pinned dependencies."""
    work = wheel.parents[1]
    venv.create(work / "venv", with_pip=False)  # this pip installs into it: a fresh venv, no ensurepip
    subprocess.run([*PIP, "--python", str(work / "venv" / "bin" / "python"), "install",
                    "-c", str(REPO / "constraints.txt"), str(wheel)], check=True, cwd=work)
    return work / "venv" / "bin" / "outbox"


@pytest.fixture
def empty_database(server: Server) -> Iterator[str]:

    name = scratch.create_database(server.url, "outbox_wheel")
    try:
        yield server.database_url(name)
    finally:
        scratch.drop_database(server.admin_url, name)


def outbox(script: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed command, run from a directory with no checkout in reach."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["DATABASE_URL"] = url
    return subprocess.run([str(script), *args], env=env, cwd=script.parents[2], capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_installed_wheel_migrates(installed: Path, empty_database: str, proof: ProofRecord) -> None:
    files = len(migrate.package_files())
    dry = outbox(installed, empty_database, "migrate", "--dry-run")
    proof.observe(dry_run=dry.stdout, stderr=dry.stderr)
    proof.check("the dry run of the installed command lists every file", want=(0, True),
                have=(dry.returncode, f"would apply {files} file(s)" in dry.stdout))
    proof.check("the wheel carries tables/locks.toml: 0006 is preceded by the locks it declares", want=True,
                have=any("0006_" in line and f"LOCK TABLE from {migrate.LOCKS_FILE}" in line
                         for line in dry.stdout.splitlines()))
    applied = outbox(installed, empty_database, "migrate")
    proof.observe(migrate=applied.stdout, migrate_stderr=applied.stderr)
    proof.check("the installed command migrates", want=0, have=applied.returncode)
    with psycopg.connect(empty_database) as conn:
        recorded = conn.execute("SELECT count(*) FROM payment_outbox.schema_migrations").fetchone()[0]
    proof.check("every file of the package is recorded as applied", want=files, have=recorded)


def test_an_install_without_its_sql_says_what_is_missing(installed: Path, empty_database: str,
                                                         proof: ProofRecord) -> None:
    site = next(installed.parents[1].glob("lib/python*/site-packages"))
    sql_tree = site / "runner" / "package_sql"
    shutil.move(sql_tree / "tables", sql_tree.parent / "tables-moved")
    try:
        broken = outbox(installed, empty_database, "migrate", "--dry-run")
    finally:
        shutil.move(sql_tree.parent / "tables-moved", sql_tree / "tables")
    proof.observe(stdout=broken.stdout, stderr=broken.stderr)
    proof.check("exit 2 with a message naming the missing package, no traceback", want=(2, True, False),
                have=(broken.returncode, "SQL package is missing" in broken.stderr, "Traceback" in broken.stderr))


def checkout_files(*patterns: str) -> set[str]:
    return {path.relative_to(REPO).as_posix() for pattern in patterns for path in REPO.glob(pattern)}


def test_the_wheel_holds_what_a_dba_a_worker_and_an_operator_run(wheel: Path, proof: ProofRecord) -> None:
    with zipfile.ZipFile(wheel) as archive:
        held = {name for name in archive.namelist() if name.startswith("runner/")}
    proof.observe(wheel=wheel.name, files=len(held))
    runner_files = checkout_files("runner/*.py", "runner/sql/*.sql", *(f"{p}/*.py" for p in WHEEL_PACKAGES))
    proof.check("every module of the top of runner/, of schema/, worker/ and operator/, and every named query, "
                "is in the wheel", want=set(), have=runner_files - held)
    package_files = {f"runner/package_sql/{name.removeprefix('sql/')}" for name in checkout_files(
        "sql/tables/*.sql", "sql/tables/locks.toml", "sql/functions/*.sql", "sql/views/*.sql", "sql/roles/*.sql",
        "sql/citus/*.sql", "sql/citus/functions/*.sql")}  # sql/citus/: `outbox migrate --citus` from the wheel
    proof.check("the SQL package is in the wheel, file for file, as runner/package_sql/", want=set(),
                have=package_files - held)
    proof.check("no tool of a checkout is in the wheel (clusters, harness, evidence, bench, lint), nor the SQL "
                "proofs", want=[], have=sorted(name for name in held if name.startswith(
                    (*CHECKOUT_ONLY, "runner/package_sql/tests"))))
    proof.check("the wheel holds nothing else", want=set(),
                have=held - runner_files - package_files - {"runner/package_sql/__init__.py"})


def test_a_checkout_tool_run_from_the_wheel_says_it_needs_a_checkout(installed: Path, proof: ProofRecord) -> None:
    for command in (("evidence", "verify", "bundle"), ("bench", "--quick"), ("lint", "migrations"),
                    ("releases", "verify")):
        result = outbox(installed, "postgresql:///unused", *command)
        proof.observe(**{command[0]: result.stderr})
        proof.check(f"outbox {command[0]} from the wheel: exit 2, says it needs a checkout, no traceback",
                    want=(2, True, False), have=(result.returncode, "needs a checkout" in result.stderr,
                                                 "Traceback" in result.stderr))


def test_the_public_worker_import_works_from_the_wheel(installed: Path, proof: ProofRecord) -> None:
    python = installed.parent / "python"
    result = subprocess.run([str(python), "-c", "from runner.worker import RailOutcome, Worker; print(Worker)"],
                            cwd=installed.parents[2], capture_output=True, text=True, timeout=60, check=False,
                            env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")})
    proof.observe(stdout=result.stdout, stderr=result.stderr)
    proof.check("`from runner.worker import Worker` works in the installed wheel", want=(0, True),
                have=(result.returncode, "runner.worker.reference.Worker" in result.stdout))
