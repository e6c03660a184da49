"""outbox retention (issue 15, item 3) and the key register's window (item 4).

A partition older than the window goes only when every item created in its range is terminal: an
item still in pending keeps it, and the run names the item. --dry-run changes nothing. Two runs
at once retire each partition once. A run that crashed after the detach (or in the middle of a
DETACH ... CONCURRENTLY) is finished by the next. A repeat of a key whose history was retired is
refused with PO034 and creates nothing; check_invariants() stays empty throughout.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from runner.client import Client, Role
from runner.schema import lockwait, retention
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.lock_waits import wait_until_blocked
from tests.helpers.partitions import backdated_item, dispatch_all, month_partition, partitions, table_exists
from tests.helpers.support import ProofRecord, sqlstate_of

pytestmark = pytest.mark.proof

POLICY = lockwait.LockPolicy(timeout_seconds=5, retries=3, first_backoff_seconds=0.05)
BEGIN_RETIREMENT = "SELECT * FROM payment_outbox._begin_partition_retirement(%s)"


def run_retention(url: str, window: str = "30 days", **options: Any) -> tuple[int, list[dict[str, Any]]]:
    lines: list[dict[str, Any]] = []
    code = retention.run(url, retention.Options(window=window, **options), emit=lines.append, policy=POLICY)
    return code, lines


def events(lines: list[dict[str, Any]], event: str) -> list[str]:
    return [line["partition"] for line in lines if line["event"] == event]


def test_only_fully_terminal_partitions_go(clean_database: Database, proof: ProofRecord, tmp_path: Path) -> None:
    url = clean_database.url
    kept, gone = month_partition(url, 2020, 1), month_partition(url, 2020, 2)
    finished_kept = backdated_item(url, "r-jan-done", "2020-01-10 12:00+00")
    backdated_item(url, "r-feb-done", "2020-02-10 12:00+00")
    backdated_item(url, "r-feb-done-2", "2020-02-11 12:00+00", participant="bank-s")
    proof.check("every item dispatched", want=3, have=dispatch_all(url))
    unfinished = backdated_item(url, "r-jan-open", "2020-01-20 12:00+00")
    proof.check("check_invariants() is empty before", want=[], have=api.violations(url))

    before = partitions(url)
    code, dry = run_retention(url, dry_run=True)
    proof.observe(dry_run=dry)
    proof.check("dry run: January kept, February retirable", want=(0, [kept], [gone]),
                have=(code, events(dry, "partition_kept"), events(dry, "partition_retirable")))
    proof.check("dry run names the unfinished item", want=[[str(unfinished["outbox_id"])]],
                have=[line["unfinished_outbox_ids"] for line in dry if line["event"] == "partition_kept"])
    proof.check("dry run changed nothing", want=(before, True, True),
                have=(partitions(url), table_exists(url, kept), table_exists(url, gone)))

    code, lines = run_retention(url, export_dir=tmp_path)
    proof.observe(run=lines)
    proof.check("the run kept January and retired February", want=(0, [kept], [gone]),
                have=(code, events(lines, "partition_kept"), events(lines, "partition_retired")))
    proof.check("the kept partition's unfinished item is named", want=[[str(unfinished["outbox_id"])]],
                have=[line["unfinished_outbox_ids"] for line in lines if line["event"] == "partition_kept"])
    proof.check("February's table is gone, January's is there",
                want=(False, True, "retired", "attached"),
                have=(table_exists(url, gone), table_exists(url, kept), partitions(url)[gone], partitions(url)[kept]))
    exported = (tmp_path / f"{gone}.csv").read_text().splitlines()
    proof.check("the export holds a header and February's ledger rows (two items, two rows each)",
                want=(5, True), have=(len(exported), exported[0].startswith("outbox_id,")))
    proof.check("check_invariants() is empty after", want=[], have=api.violations(url))

    with Client.connect(url, Role.INGEST, name="ingest") as client:
        proof.check("a repeat of a retired key is refused with PO034", want="PO034", have=sqlstate_of(
            lambda: client.enqueue("instr-r-feb-done", "bank-r", "r-feb-done", "sepa", {"key": "r-feb-done"})))
        again = client.enqueue("instr-r-jan-done", "bank-r", "r-jan-done", "sepa", {"key": "r-jan-done"})
    proof.check("a repeat of a key in a kept partition returns its item",
                want=(finished_kept["outbox_id"], "DISPATCHED"), have=(again.outbox_id, again.state))
    proof.check("the refusal wrote nothing", want=1, have=api.queue(url)["queue_depth"])

    dispatch_all(url)
    code, lines = run_retention(url)
    proof.check("once its last item is terminal, January goes too", want=(0, [kept]),
                have=(code, events(lines, "partition_retired")))
    proof.check("check_invariants() is empty at the end", want=[], have=api.violations(url))


def test_two_runs_at_once(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    name = month_partition(url, 2020, 3)
    backdated_item(url, "r-mar-done", "2020-03-10 12:00+00")
    dispatch_all(url)
    with psycopg.connect(url, autocommit=True) as other:  # a run in progress holds the lease (issue 25, item 2)
        other.execute("SELECT payment_outbox._take_package_lease('retention')")
        lines: list[dict[str, Any]] = []
        short = lockwait.LockPolicy(timeout_seconds=0.2, retries=0)
        gave_up = _gave_up(url, lines, short)
        proof.check("a run while another holds the lock waits its bound, names the holder, gives up, changes nothing",
                    want=(True, ["retention_waiting", "retention_blocked"], "attached"),
                    have=(f"pid {other.info.backend_pid}" in gave_up, [line["event"] for line in lines],
                          partitions(url)[name]))
    results: list[tuple[int, list[dict[str, Any]]]] = []
    barrier = threading.Barrier(2)

    def one() -> None:
        barrier.wait()
        results.append(run_retention(url))
    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    retired = [p for _, lines in results for p in events(lines, "partition_retired")]
    proof.observe(runs=results)
    proof.check("two runs at once: both succeed, the partition is retired once",
                want=([0, 0], [name], "retired"), have=([code for code, _ in results], retired, partitions(url)[name]))
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def _gave_up(url: str, lines: list[dict[str, Any]], policy: lockwait.LockPolicy) -> str:
    """The message of lockwait.GaveUp (exit 3) from one run; empty when the run did not give up."""
    try:
        retention.run(url, retention.Options(window="30 days"), emit=lines.append, policy=policy)
    except lockwait.GaveUp as exc:
        return str(exc)
    return ""


def test_a_crash_between_detach_and_drop_is_finished(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    name = month_partition(url, 2020, 4)
    backdated_item(url, "r-apr-done", "2020-04-10 12:00+00")
    dispatch_all(url)
    with psycopg.connect(url, autocommit=True) as owner:
        # setup: the crashed run's steps as the owner: its INSERT of the retired sequence ids, its DETACH
        owner.execute(BEGIN_RETIREMENT, (name,))
        retention.detach(owner, name, POLICY, lambda line: None)
    proof.check("after the crash: detached, still there, marked detaching", want=(True, "detaching"),
                have=(table_exists(url, name), partitions(url)[name]))
    proof.check("check_invariants() is empty in between", want=[], have=api.violations(url))
    code, lines = run_retention(url)
    proof.check("the next run finishes it", want=(0, [name], False, "retired"),
                have=(code, events(lines, "partition_retired"), table_exists(url, name), partitions(url)[name]))


def test_an_interrupted_detach_concurrently_is_finalized(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    name = month_partition(url, 2020, 5)
    backdated_item(url, "r-may-done", "2020-05-10 12:00+00")
    dispatch_all(url)
    with psycopg.connect(url) as reader, psycopg.connect(url, autocommit=True) as owner, \
            psycopg.connect(url, autocommit=True) as monitor:
        reader.execute("SELECT count(*) FROM payment_outbox.payment_outbox_attempts")  # holds its lock to commit
        owner.execute(BEGIN_RETIREMENT, (name,))  # setup: a run's first step, its INSERT of the retired sequence ids
        statement = (f"ALTER TABLE payment_outbox.payment_outbox_attempts "
                     f"DETACH PARTITION payment_outbox.{name} CONCURRENTLY")

        def detach() -> None:
            sqlstate_of(lambda: owner.execute(statement))
        detaching = threading.Thread(target=detach)
        detaching.start()
        wait_until_blocked(monitor, [owner.info.backend_pid], reader.info.backend_pid)
        monitor.execute("SELECT pg_cancel_backend(%s)", (owner.info.backend_pid,))
        detaching.join(60)
        reader.rollback()
        pending = monitor.execute("SELECT h.inhdetachpending FROM pg_inherits AS h "
                                  "WHERE h.inhrelid = %s::regclass", (f"payment_outbox.{name}",)).fetchone()
    proof.check("the cancelled DETACH ... CONCURRENTLY left the partition detach pending", want=(True,), have=pending)
    proof.check("check_invariants() is empty meanwhile", want=[], have=api.violations(url))
    code, lines = run_retention(url)
    proof.check("the next run finalizes and retires it", want=(0, [name], False),
                have=(code, events(lines, "partition_retired"), table_exists(url, name)))
    proof.check("check_invariants() is empty after", want=[], have=api.violations(url))


def test_bad_windows_are_refused(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    with Client.connect(url, Role.OPERATOR, name="operator") as client:
        proof.check("a window under a day is PO031", want=["PO031", "PO031"],
                    have=[sqlstate_of(lambda: client.retention_plan("1 hour")),
                          sqlstate_of(lambda: client.retention_plan("-1 day"))])
        proof.check("partitions ahead beyond 5 years is PO031", want="PO031",
                    have=sqlstate_of(lambda: client.ensure_partitions("6 years")))
        proof.check("a window beyond any date (300000 years, the type's end) is PO031, not 22008 (issue 25, item 7)",
                    want=["PO031", "PO031"], have=[sqlstate_of(lambda: client.retention_plan("300000 years")),
                                                   sqlstate_of(lambda: client.retention_plan("178000000 years"))])
    proof.check("outbox retention --window '300000 years' is PO031", want="PO031", have=sqlstate_of(
        lambda: run_retention(url, window="300000 years")))
