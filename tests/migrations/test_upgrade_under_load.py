"""An upgrade under load, from every release point: the previous release's ingesters, workers and
repair run while `outbox migrate` brings the database to the current package.

The database is migrated to a release point (releases/<name>/sql/). Two ingesters, two workers
(some of whose first claims go silent) and a repairer, each a thread with its own connection,
call the API as that release's clients do. Once they have made progress, migrate runs; they
go on until they have made progress on the upgraded package too. Then the queue is drained and
the history checked: nothing lost, unexpected or duplicated, every key enqueued terminal, every
failed call failed with a SQLSTATE docs/operations.md documents as retryable during an upgrade
(or a completion refused as stale after a repair), and check_invariants() empty.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from typing import Any

import psycopg
import pytest

from runner.client import Client, Role
from runner.harness import history as history_mod
from runner.harness import releases
from runner.schema import lockwait, migrate
from runner.worker import Worker
from tests.conftest import Database
from tests.faults.test_fault_crash import drain
from tests.helpers import api
from tests.helpers.fakerail import FakeRail
from tests.helpers.load import enqueue_recorded, enqueue_value, rail_policy, work_recorded
from tests.helpers.support import ProofRecord
from tests.helpers.upgrade import migrate_to
from tests.helpers.verdict import judge_history
from tests.migrations.test_migrate import empty_database  # noqa: F401  (fixture)

pytestmark = pytest.mark.proof

# What a client of the previous release may see while an upgrade commits (docs/operations.md,
# "Upgrading while payments move"): the call wrote nothing; retrying it runs the new functions.
UPGRADE_RETRYABLE = {
    "42704": "an enqueue of release 0005 resumed after the upgrade: pending's unique key is gone",
    "42883": "a call resumed after the upgrade reached a helper the upgrade dropped",
    "40P01": "deadlock with the upgrade's locks; PostgreSQL rolled the call back",
}
# A completion whose claim repair requeued (threshold 0) meanwhile: the worker drops the claim.
STALE_COMPLETION = "PO002"
BEFORE_UPGRADE = {"enqueue_ok": 40, "terminal": 10}
AFTER_UPGRADE = {"enqueue_ok": 30, "terminal": 10}
PROGRESS_TIMEOUT = 120.0


class UpgradeLoad:
    """The previous release's clients: each thread keeps going after a failed call, as a client
    that retries does, and stops at `stop` or at an error outside the allowed SQLSTATEs."""

    def __init__(self, url: str, history: history_mod.History) -> None:
        self.url, self.history = url, history
        self.rail = FakeRail(decide=rail_policy)
        self.stop = threading.Event()
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self._progress = threading.Condition()
        self._abandoned = threading.Semaphore(0)
        self.threads = [threading.Thread(target=self._guarded, args=(target, name), name=name, daemon=True)
                        for target, name in [(self._ingest, "ingest-0"), (self._ingest, "ingest-1"),
                                             (self._work, "worker-0"), (self._work, "worker-1"),
                                             (self._repair, "repair")]]

    def start(self) -> UpgradeLoad:
        for thread in self.threads:
            thread.start()
        return self

    def wait_for(self, more: dict[str, int]) -> bool:
        """Blocks until each count has grown by `more` from now (or a thread failed)."""
        with self._progress:
            want = {k: self.counts[k] + n for k, n in more.items()}
            return self._progress.wait_for(
                lambda: self.errors or all(self.counts[k] >= n for k, n in want.items()), PROGRESS_TIMEOUT
            ) and not self.errors

    def join(self) -> list[str]:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        return [thread.name for thread in self.threads if thread.is_alive()]

    def _bump(self, what: str, by: int = 1) -> None:
        with self._progress:
            self.counts[what] += by
            self._progress.notify_all()

    def _guarded(self, target: Any, name: str) -> None:
        try:
            target(name)
        except BaseException as exc:  # noqa: BLE001 - the proof reports it
            with self._progress:
                self.errors.append(f"{name}: {getattr(exc, 'sqlstate', None) or type(exc).__name__}: {exc}")
                self._progress.notify_all()

    def _allowed(self, exc: psycopg.Error, *also: str) -> bool:
        if exc.sqlstate in UPGRADE_RETRYABLE or exc.sqlstate in also:
            self._bump(f"failed_{exc.sqlstate}")
            return True
        return False

    def _ingest(self, process: str) -> None:
        with Client.connect(self.url, Role.INGEST, name=process) as client:
            for n in itertools.count():
                value = enqueue_value(process, n)
                while not self.stop.is_set():
                    try:
                        enqueue_recorded(self.history, client.conn, process, value)
                    except psycopg.Error as exc:
                        if not self._allowed(exc):
                            raise
                        continue  # the same key again, as a client retries
                    self._bump("enqueue_ok")
                    break
                if self.stop.is_set():
                    return

    def _work(self, process: str) -> None:
        # A worker of the previous release: no worker id in its completions (they had no such argument).
        with Worker.connected(self.url, process, fenced_by_worker_id=False) as worker:
            while not self.stop.is_set():
                try:
                    terminal, abandoned = work_recorded(self.history, worker, process, self.rail, 4, abandon=True)
                except psycopg.Error as exc:
                    if not self._allowed(exc, STALE_COMPLETION):
                        raise
                    continue  # an unfinished claim goes silent: repair requeues it
                for _ in range(abandoned):
                    self._abandoned.release()
                self._bump("terminal", terminal)

    def _repair(self, process: str) -> None:
        with Client.connect(self.url, Role.REPAIR, name=process) as client:
            while not self.stop.is_set():
                if not self._abandoned.acquire(timeout=0.05):
                    continue
                try:
                    with self.history.operation(process, "repair", {"threshold_seconds": 0}) as outcome:
                        rows = client.repair(0, 20)
                        outcome.value = [[str(r.outbox_id), r.attempt_no, r.new_state] for r in rows]
                except psycopg.Error as exc:
                    if not self._allowed(exc):
                        raise
                    continue
                self._bump("repaired", len(rows))


def failed_calls(history: history_mod.History) -> Counter[tuple[str, str]]:
    """(operation, SQLSTATE) of every call that failed or ended unknown."""
    return Counter((ended["f"], (ended["error"] or "").split(":")[0]) for op in ("enqueue", "claim", "complete",
                                                                                "repair")
                   for _, ended in history.completed(op) if ended["type"] != history_mod.OK)


def differs_from(point: releases.ReleasePoint) -> set[str]:
    """The files of the current package that a database at `point` lacks or holds in another version.
    Empty for the newest point until a file changes after it: the load then runs across a migrate
    that applies nothing, and the proof starts to bite with the next change of sql/."""
    at_point = {f.name: f.sha256 for f in migrate.package_files(point.root)}
    return {f.name for f in migrate.package_files() if at_point.get(f.name) != f.sha256}


@pytest.mark.parametrize("point", releases.points(), ids=lambda p: f"from-{p.name}")
def test_upgrade_under_load(point: releases.ReleasePoint, empty_database: Database,  # noqa: F811
                            proof: ProofRecord) -> None:
    url = empty_database.url
    migrate_to(url, point.root)
    history = history_mod.History(name=f"upgrade_under_load_from_{point.name}")
    load = UpgradeLoad(url, history).start()
    try:
        proof.check("the previous release's clients made progress", want=True, have=load.wait_for(BEFORE_UPGRADE))
        lines: list[str] = []
        invoked_before = len(history.operations)
        work = migrate.migrate(url, say=lines.append, policy=lockwait.LockPolicy(timeout_seconds=5, retries=20,
                                                                                 first_backoff_seconds=0.05))
        during = len(history.operations) - invoked_before
        proof.check("the clients made progress on the upgraded package", want=True, have=load.wait_for(AFTER_UPGRADE))
    finally:
        still_running = load.join()
    proof.observe(migrate=lines, counts=dict(load.counts), thread_errors=load.errors, operations_during_migrate=during)
    proof.check("every thread stopped, none at an error", want=([], []), have=(still_running, load.errors))
    proof.check("migrate brought the database to the current package", want=0,
                have=len(migrate.migrate(url, say=lambda line: None).files))
    proof.check("the run applied exactly what differs from the point: the versioned files after it, the views "
                "and functions changed since", want=differs_from(point), have={f.name for f in work.files})

    proof.observe(drain_cycles=drain(url, history, load.rail))
    failed = failed_calls(history)
    proof.observe(failed_calls={f"{f} {s}": n for (f, s), n in failed.items()})
    proof.check("every failed call failed with a SQLSTATE documented as retryable", want=[], have=sorted(
        f"{f} {s}" for f, s in failed if s not in UPGRADE_RETRYABLE and (f, s) != ("complete", STALE_COMPLETION)))
    judge_history(url, history, proof)
    proof.check("the queue is empty", want=0, have=api.queue(url)["queue_depth"])
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
