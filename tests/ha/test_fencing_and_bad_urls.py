"""Bad input, then fencing across a failover, on one HA cluster (synchronous mode).

Bad input: a URL whose hosts are all read-only (the standby, with target_session_attrs=read-write)
or down (a closed port): commands say so, name the hosts they tried, and exit 2; `outbox worker`
and `outbox repair --loop` keep retrying with a log line per attempt, and write nothing.

Fencing (PO002): a worker claims on the old leader, the leader is killed, repair requeues the
claim on the new leader, and the worker, reconnected, completes its old claim: STALE, and the
ledger is unchanged.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from runner.clusters import processes
from runner.clusters.ha import HACluster
from runner.worker import RailOutcome, Worker
from tests.helpers import api
from tests.helpers.ha_load import OUTBOX, REPO
from tests.helpers.support import ProofRecord

pytestmark = [pytest.mark.proof, pytest.mark.ha]
ATTEMPTS = 3  # retry lines the long-running parts must log before they are stopped


@pytest.fixture
def cluster(ha: HACluster) -> HACluster:
    return ha


def _read_only_and_down(ha: HACluster) -> str:
    standby = ha.standby()
    return make_conninfo(ha.node_url(standby), host="127.0.0.1,127.0.0.1",
                         port=f"{standby.pg_port},{processes.free_port()}", target_session_attrs="read-write")


def _lines_until(process: subprocess.Popen[str], event: str, count: int) -> list[dict]:
    assert process.stdout is not None
    seen: list[dict] = []
    for raw in process.stdout:  # bounded by the test's timeout; each attempt is a line
        line = json.loads(raw)
        seen.append(line)
        if sum(1 for x in seen if x["event"] == event) >= count:
            break
    return seen


def test_no_writable_host_commands_exit_2_and_loops_retry(cluster: HACluster, proof: ProofRecord) -> None:
    url = _read_only_and_down(cluster)
    before = len(api.ledger(cluster.url))
    env = {**os.environ, "DATABASE_URL": url}
    hosts = [f"127.0.0.1:{port}" for port in url.split("port=")[1].split()[0].split(",")]
    for command in (["migrate"], ["repair"], ["metrics"], ["quarantine", "list"], ["rail", "list"]):
        done = subprocess.run([str(OUTBOX), *command], env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=120)
        proof.check(f"outbox {' '.join(command)}: exit 2, saying no writable server and naming the hosts tried",
                    want=(2, True, True), have=(done.returncode, "could not reach a writable server" in
                                                done.stderr + done.stdout,
                                                all(h in done.stderr + done.stdout for h in hosts)))
    for name, command, event in (
            ("worker", ["worker", "--rail", "tests.helpers.ha_rail:rail", "--worker-id", "bad"], "worker_error"),
            ("repair --loop", ["repair", "--loop", "--interval-seconds", "0.1"], "repair_reconnecting")):
        process = subprocess.Popen([str(OUTBOX), *command], env={**env, "OUTBOX_HA_RAIL_LOG": os.devnull,
                                                                  "OUTBOX_HA_GATE": os.devnull},
                                   cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            seen = _lines_until(process, event, ATTEMPTS)
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(60)
        attempts = [line for line in seen if line["event"] == event]
        proof.observe(**{f"{name} attempts": attempts})
        proof.check(f"outbox {name} keeps retrying, one line per attempt naming the hosts, a growing backoff",
                    want=(list(range(1, ATTEMPTS + 1)), True, True),
                    have=([line["attempt"] for line in attempts], all(line["hosts"] == hosts for line in attempts),
                          attempts[-1]["backoff_seconds"] > attempts[0]["backoff_seconds"]))
        proof.check(f"outbox {name} stops on SIGTERM with exit 0", want=0, have=code)
    proof.check("nothing was written", want=before, have=len(api.ledger(cluster.url)))


def test_completion_on_the_new_leader_of_a_claim_from_the_old_is_fenced(cluster: HACluster,
                                                                        proof: ProofRecord) -> None:
    url = cluster.url
    item = api.enqueue_once(url, "fence-1", "bank-f", "fence/1")
    with Worker.connected(url, "fenced") as old_worker:
        claimed = old_worker.claim(1)
        claimed_on = old_worker.conn.info.port
        _, new = cluster.kill_leader()
        with pytest.raises(psycopg.OperationalError) as lost:  # its connection died with the old leader
            old_worker.complete(claimed[0], RailOutcome("DISPATCHED"))
    proof.observe(old_connection_error=str(lost.value).splitlines()[0] if str(lost.value) else "")
    proof.check("the claim was taken on the old leader", want=(1, 1, True),
                have=(len(claimed), claimed[0].attempt_no, claimed_on != new.pg_port))
    repaired = api.repair(url, threshold_seconds=0)
    proof.check("repair on the new leader requeued the claim (it was replicated synchronously)",
                want=[(item["outbox_id"], 2, "ZOMBIE_REQUEUE")],
                have=[(r["outbox_id"], r["attempt_no"], r["new_state"]) for r in repaired])
    before = api.ledger(url)
    with Worker.connected(url, "fenced") as reconnected:
        proof.check("the worker reconnected to the new leader", want=new.pg_port, have=reconnected.conn.info.port)
        late = reconnected.complete(claimed[0], RailOutcome("DISPATCHED", rail_reference="late"))
        batch = reconnected.complete_all([(claimed[0], RailOutcome("DISPATCHED", rail_reference="late"))])
    proof.check("its completion of the old claim is refused (PO002): STALE, one call and one batch call",
                want=("STALE", ["STALE"]), have=(late.state, [c.state for c in batch]))
    proof.check("the refused completions wrote nothing", want=before, have=api.ledger(url))
    proof.check("the item is due again, under the same key, for the next claim", want=1,
                have=api.queue(url)["due_now"])
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
