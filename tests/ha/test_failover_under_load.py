"""A Patroni failover under load, synchronous mode on, through the multi-host URL
(host=127.0.0.1,127.0.0.1 port=A,B target_session_attrs=read-write).

Two ingester threads, two real `outbox worker` processes (one with --listen) and a real `outbox
repair --loop` run; two dispatches are held inside the rail; the leader's Patroni and postmaster
are SIGKILLed; Patroni promotes the synchronous standby; nobody is restarted. After the drain:
every acknowledged enqueue is there with the outbox id and sequence id it was acknowledged with,
one item per key, at most one terminal attempt per item, every item terminal, sequence ids
gap-free per participant, check_invariants() empty, the claims in flight at the kill requeued by
repair on the new leader; every part reconnected by itself (the listener on the new leader).
Measured: seconds from the kill to the first acknowledged enqueue and the first completion on the
new leader; the rail calls repeated under one key and the claims behind them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from runner.client import Client, Role
from runner.clusters.ha import HACluster
from runner.harness import history as hist
from tests.helpers import api, ha_load
from tests.helpers.support import ProofRecord

pytestmark = [pytest.mark.proof, pytest.mark.ha]

STRICT = ("lost", "unexpected", "duplicated", "unresolved", "identity_changed", "lost_completions")


def check_history(outcome: ha_load.Outcome, owner_url: str, proof: ProofRecord) -> hist.Verdict:
    """The checks every synchronous failover load passes (also through PgBouncer)."""
    with Client.connect(owner_url, Role.AUDITOR, name="auditor") as auditor:
        terminal = hist.read_terminal_attempts(auditor.conn)
    verdict = hist.check(outcome.history, terminal)
    hist.write(outcome.history, verdict, proof.report_directory("history"))
    proof.observe(history=verdict.counts)
    proof.check("history: 0 acknowledged enqueues lost, nothing unexpected, duplicated, unresolved, re-created, "
                "no acknowledged completion lost", want=dict.fromkeys(STRICT, 0),
                have={k: verdict.counts[k] for k in STRICT})
    found = ha_load.items(owner_url)
    by_key = {(i.instruction_id, i.idempotency_key): (i.outbox_id, i.sequence_id) for i in found}
    acknowledged = ha_load.acknowledged_enqueues(outcome.history)
    proof.check("every acknowledged enqueue is there with the outbox id and sequence id it was acknowledged with",
                want={}, have={f"{k[0]}/{k[1]}": (v, by_key.get(k)) for k, v in acknowledged.items()
                               if by_key.get(k) != v})
    proof.check("every key an ingester tried was acknowledged (retried under its key until it answered)",
                want=verdict.counts["attempted"], have=len(acknowledged))
    proof.check("one item per key", want=[], have=[k for k, n in Counter(
        (i.instruction_id, i.idempotency_key) for i in found).items() if n > 1])
    per_item = Counter(t.outbox_id for t in terminal)
    proof.check("at most one terminal attempt per item", want=[], have=[i for i, n in per_item.items() if n > 1])
    proof.check("every item terminal after the drain", want=len(found), have=len(per_item))
    proof.check("sequence ids gap-free per participant", want={}, have=ha_load.gaps(found))
    proof.check("check_invariants() is empty", want=[], have=api.violations(owner_url))
    return verdict


def check_failover(outcome: ha_load.Outcome, proof: ProofRecord, *, pooled: bool = False) -> None:
    """The parts reconnected by themselves, the held claims were requeued on the new leader; the
    measurements go into the proof's record. `pooled`: ingest, workers and repair went through
    PgBouncer, which hides the failover from a client between transactions (it may not need to
    reconnect at all); the listener went direct."""
    new_port = outcome.new.pg_port
    ledger = api.ledger_rows(proof.observed["owner_url"])
    requeued_after_kill = {(line["outbox_id"], line["attempt_no"] - 1) for line in outcome.events("zombie_requeued")
                           if ha_load.epoch(line) > outcome.killed_at}
    requeued_before_kill = {(line["outbox_id"], line["attempt_no"] - 1) for line in outcome.events("zombie_requeued")
                            if ha_load.epoch(line) <= outcome.killed_at}
    # A held claim older than the threshold before the kill (a slow machine) was requeued then,
    # and its item claimed and held again: the claims in flight at the kill are the others.
    held = {(line["outbox_id"], line["attempt_no"]) for line in outcome.gated} - requeued_before_kill
    proof.observe(held_claims_at_kill=sorted(held), held_claims_requeued_before_kill=sorted(
        {(line["outbox_id"], line["attempt_no"]) for line in outcome.gated} & requeued_before_kill))
    proof.check("the claims held in the rail at the kill were requeued by repair on the new leader",
                want=(True, held), have=(bool(held), held & requeued_after_kill))
    repeated = ha_load.repeated_rail_calls(outcome, ledger)
    unexplained = [r for r in repeated if not all(c["ended_by"] in ("ZOMBIE_REQUEUE",) for c in r["claims"][:-1])]
    proof.observe(repeated_rail_calls=repeated, repeated_rail_call_keys=len(repeated),
                  claims_requeued_after_kill=sorted(requeued_after_kill))
    proof.check("every rail call repeated under a key follows a claim that repair requeued", want=[], have=unexplained)
    proof.check("the held claims' keys were sent to the rail again (at least once towards the rail)",
                want=True, have={line["key"] for line in outcome.gated} <= {r["key"] for r in repeated})
    for process in () if pooled else ("worker-a", "worker-b", "repair"):
        landed = [line for line in outcome.events("reconnected", process=process) if ha_load.epoch(line) >
                  outcome.killed_at]
        proof.check(f"{process} reconnected by itself to the new leader", want=True,
                    have=bool(landed) and all(line["port"] == new_port for line in landed))
    # The listener connects directly (--listen-url behind a pooler) in both cases.
    listened = [line for line in outcome.events("reconnected", process="worker-a", component="listener")
                if ha_load.epoch(line) > outcome.killed_at]
    proof.check("--listen listens again on the new leader", want=[new_port],
                have=sorted({line["port"] for line in listened}))
    per_attempt = [line for line in outcome.lines if line.get("event") in ("worker_error", "repair_reconnecting",
                                                                          "listen_lost")]
    proof.check("one JSON line per reconnect attempt, with its backoff and the hosts tried", want=True,
                have=bool(per_attempt or pooled) and all({"attempt", "backoff_seconds", "hosts", "cause"} <= set(line)
                                               for line in per_attempt))
    if pooled:  # after the kill every server connection PgBouncer has is to the new leader
        first_ack = outcome.seconds_to_first([t for t, _, _, _ in outcome.acks])
        first_completion = outcome.seconds_to_first([ha_load.epoch(line) for line in outcome.events("completed")])
    else:
        first_ack = outcome.seconds_to_first([t for t, port, _, _ in outcome.acks if port == new_port])
        first_completion = outcome.seconds_to_first(outcome.completions_on_new_leader())
    proof.observe(seconds_kill_to_promotion=round(outcome.promoted_at - outcome.killed_at, 3),
                  seconds_kill_to_first_acknowledged_enqueue=first_ack,
                  seconds_kill_to_first_completion_on_new_leader=first_completion,
                  ingest_retries=outcome.counts["ingest_retries"],
                  reconnect_lines=len(per_attempt), exit_codes=outcome.exit_codes,
                  old_leader=outcome.old.name, new_leader=outcome.new.name)
    proof.check("an enqueue and a completion were acknowledged on the new leader", want=(True, True),
                have=(first_ack is not None, first_completion is not None))
    proof.check("SIGTERM stopped every process with exit 0 after the drain",
                want={"worker-a": 0, "worker-b": 0, "repair": 0}, have=outcome.exit_codes)


def test_failover_under_load_loses_nothing_acknowledged(ha: HACluster, tmp_path: Path, proof: ProofRecord) -> None:
    url = ha.url
    proof.observe(owner_url=url, synchronous=True, url_shape="host=127.0.0.1,127.0.0.1 port=A,B "
                                                             "target_session_attrs=read-write")
    urls = ha_load.Urls(ingest=url, worker=url, repair=url, owner=url)
    outcome = ha_load.run(ha, urls, tmp_path, "ha_failover_under_load")
    check_history(outcome, url, proof)
    check_failover(outcome, proof)
