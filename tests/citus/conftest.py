"""The Citus proofs (`make prove-citus`): one throwaway coordinator and two workers for the session.

Collected only when OUTBOX_CITUS=1 (make prove-citus sets it): they need Citus, which
runner/clusters/citus_build.py builds once when the server lacks it, and three servers on two
cores; `make test` and `make prove` leave them out. Each test uses participants of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from runner.clusters.citus import CitusCluster

if os.environ.get("OUTBOX_CITUS", "") != "1":
    collect_ignore_glob = ["test_*.py"]

# A login role per runtime role, a member of it: a delegated call opens its connection to the
# worker node as the current role, which must be able to log in there (no SET ROLE to a NOLOGIN role).
LOGINS = {"ingest": "outbox_ingest", "executor": "outbox_executor", "repair": "outbox_repair",
          "readonly": "outbox_readonly", "auditor": "outbox_auditor", "operator": "outbox_operator"}


@dataclass
class Citus:
    cluster: CitusCluster

    @property
    def owner_url(self) -> str:
        return self.cluster.database_url

    @property
    def admin_url(self) -> str:
        return self.cluster.admin_url

    def url(self, login: str) -> str:
        """The coordinator, as the login role of a runtime role: citus_ingest, citus_executor, ..."""
        return self.cluster.url(user=f"citus_{login}")


@pytest.fixture(scope="session")
def citus() -> Iterator[Citus]:
    with CitusCluster(workers=2) as cluster:
        # The command a DBA runs: the single-node package, then its distribution.
        run = subprocess.run([str(Path(sys.executable).parent / "outbox"), "migrate", "--citus"],
                             capture_output=True, text=True, check=False,
                             env={**os.environ, "DATABASE_URL": cluster.database_url})
        assert run.returncode == 0, run.stdout + run.stderr
        with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
            for login, role in LOGINS.items():
                conn.execute(f"CREATE ROLE citus_{login} LOGIN IN ROLE {role}")
        yield Citus(cluster)


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:8]
