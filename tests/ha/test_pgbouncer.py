"""PgBouncer (Debian's 1.18) in transaction pooling, from deploy/pgbouncer/pgbouncer.ini, in front
of the HA cluster's leader: ingest, `outbox worker` and `outbox repair --loop` go through it, each
as a login of its own that is a member of its runtime role (no session SET ROLE through a pooler);
the listener goes direct (--listen-url). The same failover under load as
test_failover_under_load.py, history-checked; after the promotion PgBouncer is pointed at the new
leader and RELOADed, as a Patroni on_role_change callback does. The runner keeps no session state
through it: psycopg's automatic prepared statements are off there (PgBouncer 1.18 would fail the
sixth execution of a statement otherwise), and migrate, convert-ledger and retention refuse it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from psycopg import sql

from runner import db
from runner.clusters.embedded import OWNER_ROLE
from runner.clusters.ha import HACluster
from runner.clusters.pgbouncer import PgBouncer
from tests.ha.test_failover_under_load import check_failover, check_history
from tests.helpers import ha_load
from tests.helpers.ha_load import OUTBOX, REPO
from tests.helpers.support import ProofRecord

pytestmark = [pytest.mark.proof, pytest.mark.ha]
LOGINS = {"ha_ingest": "outbox_ingest", "ha_worker": "outbox_executor", "ha_repair": "outbox_repair"}


def test_failover_under_load_through_pgbouncer(ha: HACluster, tmp_path: Path, proof: ProofRecord) -> None:
    passwords = {login: os.urandom(8).hex() for login in LOGINS}
    with db.connection(ha.url, autocommit=True) as conn:
        for login, role in LOGINS.items():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(login), sql.Literal(passwords[login]), sql.Identifier(role)))
    users = {**passwords, OWNER_ROLE: ha.passwords[OWNER_ROLE]}
    with PgBouncer(ha.leader().pg_port, users) as pooler:
        proof.observe(pool_mode=pooler.settings["pool_mode"], owner_url=ha.url)
        proof.check("the deploy example pools transactions", want="transaction", have=pooler.settings["pool_mode"])
        with db.connection(pooler.url("ha_worker"), role="outbox_executor", autocommit=True) as pooled, \
                db.connection(ha.url, autocommit=True) as direct:
            proof.check("the runner finds the pooler, and turns psycopg's automatic preparing off behind it",
                        want=(True, None, False), have=(db.behind_pooler(pooled), pooled.prepare_threshold,
                                                        db.behind_pooler(direct)))
            for _ in range(12):  # past psycopg's threshold of 5: a prepared statement would fail here
                pooled.execute("SELECT payment_outbox.wakeup_channel()")
        env = {**os.environ, "DATABASE_URL": pooler.url(OWNER_ROLE)}
        for command in (["migrate"], ["convert-ledger"], ["retention", "--window", "13 months", "--dry-run"]):
            done = subprocess.run([str(OUTBOX), *command], env=env, cwd=REPO, capture_output=True, text=True,
                                  timeout=120)
            proof.check(f"outbox {command[0]} refuses the pooler (exit 2) and says why",
                        want=(2, True), have=(done.returncode, "connection pooler" in done.stderr))

        ha.passwords["ha_worker"] = passwords["ha_worker"]
        direct_listen = ha.multi_host_url(user="ha_worker")
        urls = ha_load.Urls(ingest=pooler.url("ha_ingest"), worker=pooler.url("ha_worker"),
                            repair=pooler.url("ha_repair"), listen=direct_listen, owner=ha.url)
        outcome = ha_load.run(ha, urls, tmp_path, "ha_failover_through_pgbouncer",
                              after_kill=lambda old, new: pooler.retarget(new.pg_port))
    check_history(outcome, ha.url, proof)
    check_failover(outcome, proof, pooled=True)
    errors = [line for line in outcome.lines if line.get("event") == "stderr" and line["text"].strip()]
    proof.check("no process wrote to stderr", want=[], have=errors[:5])
