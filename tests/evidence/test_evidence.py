"""`outbox evidence`: a complete bundle, a manifest that catches any change, and failures shown in full."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner.harness import sqlproof
from tests.conftest import Server
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof

REPO = Path(__file__).resolve().parents[2]
GUARDRAILS = ("sqlfluff", "owner_access_only_in_setup", "security_definer_search_path", "public_execute",
              "dynamic_sql_format", "table_owner_and_grants", "proofs_change_no_privileges")
PLANTED_CONFTEST = "from tests.conftest import database, proof, pytest_runtest_makereport, server  # noqa: F401\n"
PLANTED_TESTS = '''
import psycopg
import pytest

pytestmark = pytest.mark.proof


def test_planted_failure(proof):
    proof.check("planted invariant: one pending row per key", want=1, have=2)


def test_planted_report_never_written(proof):
    proof.report_directory("planted_report")  # says it writes a report there, then writes nothing


def test_planted_grant(database):
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute("GRANT SELECT ON payment_outbox.payment_outbox_pending TO outbox_auditor")
'''


def outbox(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runner.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OUTBOX_TEST_") and k not in ("OUTBOX_REPORTS_DIR", "DATABASE_URL")}
    return {**env, **extra}


def only_bundle(root: Path) -> Path:
    bundles = [path for path in root.iterdir() if path.is_dir()]
    assert len(bundles) == 1, bundles
    return bundles[0]


@pytest.fixture(scope="module")
def pristine(server: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A bundle of the SQL proofs, built the way `make evidence` builds one: on an embedded cluster of
    its own when this session has one, else on the server DATABASE_URL names."""
    root = tmp_path_factory.mktemp("evidence")
    env = clean_env() if server.cluster is not None else clean_env(DATABASE_URL=server.url)
    result = outbox("evidence", "--pytest-args=tests/sql -k sql_proof", f"--reports-dir={root}", env=env)
    return only_bundle(root), result


def test_bundle_holds_everything_and_verifies(pristine: tuple[Path, subprocess.CompletedProcess[str]],
                                             proof: ProofRecord) -> None:
    bundle, build = pristine
    run = json.loads((bundle / "run.json").read_text())
    verify = outbox("evidence", "verify", str(bundle), env=clean_env())
    sha256sum = subprocess.run(["sha256sum", "--strict", "-c", "MANIFEST.sha256"], cwd=bundle, capture_output=True,
                               text=True)
    records = sorted(path.name for path in (bundle / "proofs" / "records").glob("*.json"))
    proof.observe(bundle=bundle.name, build_tail=build.stdout[-400:] + build.stderr[-400:], records=records)
    proof.check("evidence exits 0", want=0, have=build.returncode)
    proof.check("run.json says PASSED", want="PASSED", have=run["status"])
    proof.check("a PASSED bundle names nothing MISSING", want=([], False),
                have=(run["reports_missing"], "MISSING" in (bundle / "summary.md").read_text()))
    proof.check("every guardrail ran and passed", want={name: "PASS" for name in GUARDRAILS}, have=run["guardrails"])
    proof.check("run.json records the environment", want=[], have=[
        key for key in ("started_utc", "ended_utc", "git", "commands", "random_seeds", "versions", "server", "host")
        if not run.get(key)])
    proof.check("the server settings are recorded", want=[], have=[
        key for key in ("server_banner", "synchronous_commit", "fsync", "default_transaction_isolation",
                        "time_zone", "data_checksums") if key not in run["server"]])
    proof.check("one proof record per SQL proof", want=len(sqlproof.proof_files()), have=len(records))
    proof.check("the fixed files are there", want=[], have=[name for name in (
        "summary.md", "MANIFEST.sha256", "guardrails/sqlfluff.txt", "proofs/junit.xml", "proofs/pytest.log",
        "proofs/migrate.log", "role_usage/code_scan.json", "role_usage/privileges_before_migrate.tsv",
        "role_usage/privileges_after_migrate.tsv", "role_usage/privileges_after_proofs.tsv",
        "role_usage/roles_after_proofs.tsv") if not (bundle / name).is_file()])
    proof.check("the proofs changed no privilege", want="no difference\n",
                have=(bundle / "role_usage" / "diff_privileges_after_migrate__after_proofs.txt").read_text())
    proof.check("outbox evidence verify exits 0", want=0, have=verify.returncode)
    proof.check("sha256sum -c passes", want=0, have=sha256sum.returncode)


@pytest.mark.parametrize("name", ["run.json", "summary.md", "proofs/junit.xml", "proofs/pytest.log",
                                  "guardrails/sqlfluff.txt", "role_usage/privileges_after_proofs.tsv",
                                  "proofs/records/test_sql_proof[privilege_matrix].json"])
def test_one_changed_byte_is_named(pristine: tuple[Path, subprocess.CompletedProcess[str]], name: str,
                                   tmp_path: Path, proof: ProofRecord) -> None:
    bundle = shutil.copytree(pristine[0], tmp_path / "bundle")
    data = bytearray((bundle / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / name).write_bytes(bytes(data))
    verify = outbox("evidence", "verify", str(bundle), env=clean_env())
    sha256sum = subprocess.run(["sha256sum", "-c", "MANIFEST.sha256"], cwd=bundle, capture_output=True, text=True)
    proof.check("verify exits non-zero", want=1, have=verify.returncode)
    proof.check("verify names the file and nothing else", want=f"outbox evidence verify: changed: {name}",
                have=verify.stderr.strip())
    proof.check("sha256sum -c fails too", want=True, have=sha256sum.returncode != 0)


def test_missing_and_extra_files_are_named(pristine: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path,
                                           proof: ProofRecord) -> None:
    bundle = shutil.copytree(pristine[0], tmp_path / "bundle")
    (bundle / "guardrails" / "public_execute.json").unlink()
    (bundle / "proofs" / "forged.json").write_text("{}\n")
    verify = outbox("evidence", "verify", str(bundle), env=clean_env())
    proof.check("verify exits non-zero", want=1, have=verify.returncode)
    proof.check("verify names the missing and the extra file", want=[
        "outbox evidence verify: missing: guardrails/public_execute.json",
        "outbox evidence verify: extra: proofs/forged.json"], have=verify.stderr.strip().splitlines())


def test_failed_proof_makes_a_complete_bundle_that_says_failed(server: Server, tmp_path: Path,
                                                              proof: ProofRecord) -> None:
    """A planted failing proof, and a planted grant that the privilege_matrix proof (run after it) and
    the proofs_change_no_privileges guardrail must both catch."""
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "conftest.py").write_text(PLANTED_CONFTEST)
    (planted / "test_planted.py").write_text(PLANTED_TESTS)
    root = tmp_path / "reports"
    selection = f"{planted} tests/sql -k 'planted or privilege_matrix'"
    build = outbox("evidence", f"--pytest-args={selection}", f"--reports-dir={root}",
                   env=clean_env(DATABASE_URL=server.url))
    bundle = only_bundle(root)
    run = json.loads((bundle / "run.json").read_text())
    summary = (bundle / "summary.md").read_text()
    record = json.loads((bundle / "proofs" / "records" / "test_planted_failure.json").read_text())
    changes = json.loads((bundle / "guardrails" / "proofs_change_no_privileges.json").read_text())
    verify = outbox("evidence", "verify", str(bundle), env=clean_env())
    proof.observe(summary=summary[:1500])
    proof.check("evidence exits non-zero", want=1, have=build.returncode)
    proof.check("run.json says FAILED", want="FAILED", have=run["status"])
    proof.check("planted failure and privilege_matrix (seeing the planted grant) fail; the grant itself passes",
                want={"FAILED": 2, "PASSED": 2}, have=run["proofs"])
    proof.check("the report a record names and nobody wrote is MISSING", want=(["planted_report"], True),
                have=(run["reports_missing"], "- planted_report: MISSING" in summary))
    proof.check("the SQL proof names the planted grant", want=True,
                have="SELECT outbox_auditor ON table payment_outbox_pending" in summary)
    proof.check("the record holds the failed invariant", want=[{"name": "planted invariant: one pending row per key",
                                                                 "wanted": 1, "observed": 2, "pass": False}],
                have=record["invariants"])
    proof.check("summary names the failure with have and want", want=True,
                have="planted invariant: one pending row per key\n  - have: `2`\n  - want: `1`" in summary)
    proof.check("the privilege granted during the proofs is named", want=[
        {"object": "+ outbox_auditor | table payment_outbox_pending | SELECT",
         "detail": "privilege changed by the proofs"}], have=changes["offenders"])
    proof.check("the failed bundle verifies", want=0, have=verify.returncode)
