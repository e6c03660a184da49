"""The wheel carries the SQL package: built from this checkout, installed into a fresh venv away
from the checkout, its `outbox migrate` applies every file; with the SQL gone it says what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from runner import migrate, scratch
from tests.conftest import Server
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `outbox` console script of the wheel, installed with its pinned dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check"]
    # A build without isolation writes build/ into the tree it builds: a copy, so the checkout stays clean.
    source = shutil.copytree(REPO, work / "source", ignore=shutil.ignore_patterns(
        ".git", ".venv", ".pg", "reports", "build", "*.egg-info", "__pycache__", ".*_cache"))
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(work / "dist"),
                    str(source)], check=True, cwd=work)
    (wheel,) = (work / "dist").glob("payment_outbox-*.whl")
    venv.create(work / "venv", with_pip=False)  # this pip installs into it: a fresh venv, no ensurepip
    subprocess.run([*pip, "--python", str(work / "venv" / "bin" / "python"), "install",
                    "-c", str(REPO / "constraints.txt"), str(wheel)], check=True, cwd=work)
    return work / "venv" / "bin" / "outbox"


@pytest.fixture
def empty_database(server: Server) -> Iterator[str]:

    name = scratch.create_database(server.url, "outbox_wheel")
    try:
        yield server.database_url(name)
    finally:
        scratch.drop_database(server.url, name)


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
