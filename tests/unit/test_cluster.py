"""The embedded cluster: found, started as an unprivileged user, and always removed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from runner.clusters import embedded as cluster
from tests.conftest import Server


def test_no_server_binaries_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OUTBOX_PG_MAJOR", raising=False)
    monkeypatch.setattr(cluster.shutil, "which", lambda name: None)
    monkeypatch.setattr(cluster.glob, "glob", lambda pattern: [])
    with pytest.raises(cluster.ClusterError) as error:
        cluster.find_bindir()
    assert "apt-get install postgresql" in str(error.value), str(error.value)


def test_newest_debian_version_is_preferred() -> None:
    paths = ["/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/13/bin"]
    ordered = sorted(paths, key=cluster._version_key, reverse=True)
    assert ordered[0] == "/usr/lib/postgresql/15/bin", ordered


def test_cluster_runs_unprivileged_with_fsync_and_is_removed_after_a_failure() -> None:
    workdir: Path | None = None
    with pytest.raises(RuntimeError, match="boom"):
        with cluster.EmbeddedCluster() as embedded:
            workdir = embedded.workdir
            with psycopg.connect(embedded.admin_url) as conn:
                settings: dict[str, str] = dict(conn.execute(
                    "SELECT name, setting FROM pg_settings "
                    "WHERE name IN ('fsync', 'data_checksums', 'listen_addresses')"
                ).fetchall())
            with psycopg.connect(embedded.database_url) as conn:
                owner = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
            assert settings == {"fsync": "on", "data_checksums": "on", "listen_addresses": ""}, settings
            assert owner is False, "the package owner must not be a superuser"
            if os.geteuid() == 0:
                assert (embedded.datadir / "PG_VERSION").stat().st_uid != 0, "the server must not run as root"
            raise RuntimeError("boom")
    assert workdir is not None and not workdir.exists(), f"{workdir} left behind"


CHILD = """
import sys
from runner.clusters.embedded import EmbeddedCluster
with EmbeddedCluster() as embedded:
    print(embedded.workdir, flush=True)
    sys.stdin.read()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cluster_is_removed_after_an_interrupt(signum: int) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    workdir = Path(child.stdout.readline().strip())
    assert (workdir / "data" / "postmaster.pid").exists(), "the cluster did not start"
    child.send_signal(signum)
    child.communicate(timeout=60)
    assert not workdir.exists(), f"{workdir} left behind after signal {signum}"


@pytest.mark.proof
def test_the_embedded_cluster_runs_the_major_asked_for(server: Server) -> None:
    """`make prove PG=18` proves on 18; with PG unset, on the server pg_config on PATH names."""
    if server.cluster is None:
        pytest.skip("DATABASE_URL names the server: no embedded cluster chose one")
    asked = os.environ.get("OUTBOX_PG_MAJOR", "").strip()
    if asked:
        want = int(asked)
    else:
        pg_config = shutil.which("pg_config")
        if pg_config is None:
            pytest.skip("no pg_config on PATH: the newest Debian server was chosen")
        reported = subprocess.run([pg_config, "--version"], capture_output=True, text=True, check=True).stdout
        want = int(reported.split()[1].split(".")[0])  # "PostgreSQL 15.18 (Debian ...)"
    with psycopg.connect(server.url) as conn:
        have = conn.execute("SELECT current_setting('server_version_num')::integer / 10000").fetchone()[0]
    assert have == want, f"the embedded cluster runs PostgreSQL {have}, want {want} ({server.cluster.bindir})"
