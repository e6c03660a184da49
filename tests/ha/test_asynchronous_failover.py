"""The asynchronous case, measured and not hidden: synchronous mode off, the same load and kill as
tests/ha/test_failover_under_load.py.

To make the loss the configuration allows actually happen, and happen every run, replication is
cut before the kill (HACluster.cut_replication: the leader's pg_hba.conf refuses replication, its
WAL sender is terminated, as a partition between the two nodes would) while the ingesters and
workers go on: the leader acknowledges commits its standby never receives, as it does whenever a
standby lags. WAL written after the cut never leaves the leader: the loss is deterministic. Then the
leader is killed and the standby promoted with what it had. Before the kill the proof waits for
enough enqueues and DISPATCHED completions after the cut that some must have committed after it
(more completions than the worker threads can have had under way at the cut). (A SIGSTOP of the
WAL receiver does not do it: it finds what was sent before in its socket buffer, and the failover
lost 1 enqueue of 40 so acknowledged. Stopping a server process with SIGSTOP risks stopping it
inside a spinlock; the cut stops nothing.)

Then: count what the failover lost (acknowledged enqueues, acknowledged completions); every enqueue
first tried after the stop and acknowledged by the old leader is among the lost; re-send each lost
enqueue under its key (the client's rule for an answer it cannot trust) and show it restored; a
lost DISPATCHED completion becomes a repeated rail call under the same key, never a second item;
at most one terminal attempt per item; check_invariants() empty.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from runner.client import Client, Role
from runner.clusters.ha import HACluster
from runner.harness import history as hist
from tests.faults.test_fault_crash import drain
from tests.helpers import api, ha_load, ha_rail
from tests.helpers.load import enqueue_recorded
from tests.helpers.support import ProofRecord

pytestmark = [pytest.mark.proof, pytest.mark.ha]
UNREPLICATED_ACKS = 40  # enqueues the leader acknowledges while its standby receives nothing
# DISPATCHED completions logged after the cut before the kill: more than the 2 workers x 2 threads x
# batch of 4 could have had committed, unlogged, at the cut, so at least one committed after it.
UNREPLICATED_DISPATCHED = 2 * 2 * 4 + 1


def test_asynchronous_failover_loses_acknowledged_work_and_resending_by_key_restores_it(
        ha_async: HACluster, tmp_path: Path, proof: ProofRecord, monkeypatch: pytest.MonkeyPatch) -> None:
    ha = ha_async
    url = ha.url
    stopped_at: list[float] = []

    def cut_replication(ingesters: ha_load.Ingesters, processes: ha_load.Processes) -> None:
        ha.cut_replication()
        stopped_at.append(time.time())
        acknowledged = ingesters.acknowledged()
        dispatched = processes.count("completed", state="DISPATCHED")
        enqueued = ingesters.wait_for(acknowledged + UNREPLICATED_ACKS)
        completed = processes.wait_for(lambda lines: sum(
            1 for x in lines if x.get("event") == "completed" and x.get("state") == "DISPATCHED")
            >= dispatched + UNREPLICATED_DISPATCHED)
        if not (enqueued and completed):
            raise AssertionError(f"the load stalled after replication was cut: acknowledged {acknowledged} -> "
                                 f"{ingesters.acknowledged()}, DISPATCHED {dispatched} -> "
                                 f"{processes.count('completed', state='DISPATCHED')}; {ingesters.errors}")

    urls = ha_load.Urls(ingest=url, worker=url, repair=url, owner=url)
    outcome = ha_load.run(ha, urls, tmp_path, "ha_asynchronous_failover", before_kill=cut_replication)
    with Client.connect(url, Role.AUDITOR, name="auditor") as auditor:
        verdict = hist.check(outcome.history, hist.read_terminal_attempts(auditor.conn))
    acknowledged = ha_load.acknowledged_enqueues(outcome.history)
    found = {(i.instruction_id, i.idempotency_key): (i.outbox_id, i.sequence_id) for i in ha_load.items(url)}
    lost_keys = sorted(k for k in acknowledged if k not in found)
    lost_completions = verdict.details["lost_completions"]
    key_of = {(process, n): hist.key_of(ha_load.enqueue_value(process, n)) for _, _, process, n in outcome.acks}
    after_cut_on_old = sorted(key_of[(process, n)] for _, port, process, n in outcome.acks
                               if port == outcome.old.pg_port and outcome.first_tried[(process, n)] > stopped_at[0])
    told_dispatched = {line["outbox_id"] for line in outcome.lines
                       if line.get("event") == "completed" and line.get("state") == "DISPATCHED"}
    lost_dispatched = sorted({outbox_id for outbox_id, _ in lost_completions if outbox_id in told_dispatched})
    proof.observe(synchronous=False, history_after_failover=verdict.counts, owner_url=url,
                  lost_acknowledged_enqueues=len(lost_keys), lost_acknowledged_completions=len(lost_completions),
                  lost_acknowledged_dispatched_completions=len(lost_dispatched),
                  acknowledged_by_the_old_leader_after_replication_was_cut=len(after_cut_on_old),
                  lost_acknowledged_before_replication_was_cut=len(set(lost_keys) - set(after_cut_on_old)),
                  seconds_kill_to_promotion=round(outcome.promoted_at - outcome.killed_at, 3))
    proof.check("the asynchronous failover lost acknowledged enqueues and DISPATCHED completions (what "
                "synchronous mode prevents)", want=(True, True), have=(len(lost_keys) > 0, len(lost_dispatched) > 0))
    proof.check("every enqueue first tried after replication was cut and acknowledged by the old leader was lost",
                want=after_cut_on_old, have=sorted(set(after_cut_on_old) & set(lost_keys)))

    # Re-send every lost enqueue under its key, with the arguments it was first sent with.
    first_sent = {hist.key_of(invoked["value"]): invoked["value"] for invoked, _ in
                  outcome.history.completed("enqueue")}
    with Client.connect(url, Role.INGEST, name="resend") as client:
        for key in lost_keys:
            enqueue_recorded(outcome.history, client.conn, "resend", first_sent[key])
    monkeypatch.setenv("OUTBOX_HA_RAIL_LOG", str(tmp_path / "rail.jsonl"))
    monkeypatch.setenv("OUTBOX_HA_GATE", str(tmp_path / "gate"))
    drain(url, outcome.history, ha_rail.rail)  # type: ignore[arg-type]
    outcome.rail_calls = ha_rail.calls(str(tmp_path / "rail.jsonl"))

    items = ha_load.items(url)
    per_key = Counter((i.instruction_id, i.idempotency_key) for i in items)
    with Client.connect(url, Role.AUDITOR, name="auditor") as auditor:
        terminal = hist.read_terminal_attempts(auditor.conn)
    terminal_keys = {(t.instruction_id, t.idempotency_key) for t in terminal}
    proof.check("re-sending by key restored every lost enqueue: each key acknowledged has its item, terminal",
                want=[], have=[k for k in acknowledged if k not in terminal_keys])
    proof.check("one item per key, re-sent ones included", want=[], have=[k for k, n in per_key.items() if n > 1])
    proof.check("at most one terminal attempt per item", want=[],
                have=[i for i, n in Counter(t.outbox_id for t in terminal).items() if n > 1])
    # Keys are unique across ingesters (ingest-N/n): the rail and the items are counted by key.
    key_of_call = {str(c["outbox_id"]): str(c["key"]) for c in outcome.rail_calls}
    calls_per_key = Counter(str(c["key"]) for c in outcome.rail_calls)
    items_per_key = Counter(i.idempotency_key for i in items)
    repeated: dict[str, tuple[str | None, int, int]] = {  # outbox_id: (key, rail calls, items of the key)
        outbox_id: (key_of_call.get(outbox_id), calls_per_key[key_of_call.get(outbox_id, "")],
                    items_per_key[key_of_call.get(outbox_id, "")]) for outbox_id in lost_dispatched}
    proof.observe(lost_dispatched_completions=repeated,
                  acknowledged_sequence_ids_not_kept=sum(1 for k in lost_keys if found.get(k) is None))
    proof.check("each lost DISPATCHED completion became a repeated rail call under the same key, never a second "
                "item", want=[], have=[o for o, (_, calls, n) in repeated.items() if calls < 2 or n != 1])
    proof.check("the queue is empty", want=0, have=api.queue(url)["queue_depth"])
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
