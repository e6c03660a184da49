"""A mixed load for the fault proofs: ingesters, workers and a repairer, every call in a History.

Ingesters enqueue new keys for three participants. Workers claim batches, call the fake rail and
complete; a fixed share of first claims is abandoned after the rail call (the worker "goes
silent"), and each abandonment wakes the repairer, which requeues with threshold 0. A thread stops
at its first database error (the crash) or when `stop` is set. `enough` is set once every count
in `targets` is reached: the moment to inject the fault.
"""

from __future__ import annotations

import itertools
import threading
import zlib
from collections import Counter
from typing import Any

import psycopg

from runner.client import Client, Role
from runner.harness.history import History
from runner.worker import ClaimedItem, RailOutcome, Worker
from tests.helpers import api
from tests.helpers.fakerail import FakeRail
from tests.helpers.support import role_connection

PARTICIPANTS = ("bank-a", "bank-b", "bank-c")
TERMINAL = ("DISPATCHED", "FAILED")


def share(key: str, modulus: int, residue: int) -> bool:
    """A fixed, reproducible share of the keys (crc32, not Python's salted hash)."""
    return zlib.crc32(key.encode()) % modulus == residue


def rail_policy(item: ClaimedItem) -> RailOutcome:
    """First dispatches: 1 in 5 RETRYABLE, 1 in 7 FAILED; every later dispatch DISPATCHED."""
    if item.attempt_count == 1 and share(item.idempotency_key, 5, 1):
        return RailOutcome("RETRYABLE", error_code="RAIL_BUSY")
    if item.attempt_count == 1 and share(item.idempotency_key, 7, 2):
        return RailOutcome("FAILED", error_code="AC04", error_message="account closed")
    return RailOutcome("DISPATCHED", rail_reference=f"fake-{item.idempotency_key}-{item.attempt_no}")


def enqueue_value(process: str, n: int) -> dict[str, Any]:
    return {"instruction_id": f"instr-{process}-{n}", "idempotency_key": f"{process}/{n}",
            "participant_id": PARTICIPANTS[n % len(PARTICIPANTS)], "payload": {"n": n, "by": process}}


def enqueue_recorded(history: History, conn: psycopg.Connection, process: str, value: dict[str, Any]) -> dict:
    """One enqueue, recorded; `value` is what a retry of the same key needs (same payload)."""
    with history.operation(process, "enqueue", value) as outcome:
        row = api.enqueue(conn, value["instruction_id"], value["participant_id"], value["idempotency_key"],
                          payload=value["payload"])
        outcome.value = {"outbox_id": str(row["outbox_id"]), "sequence_id": row["sequence_id"],
                         "created_at": row["created_at"], "state": row["state"]}
    return outcome.value


def work_recorded(history: History, worker: Worker, process: str, rail: FakeRail, batch_size: int,
                  abandon: bool) -> tuple[int, int]:
    """One worker cycle, recorded: (terminal completions, claims abandoned)."""
    with history.operation(process, "claim", {"batch_size": batch_size}) as outcome:
        items = worker.claim(batch_size)
        outcome.value = [[str(i.outbox_id), i.attempt_no] for i in items]
    terminal = abandoned = 0
    for item in items:
        result = worker.dispatch(item, rail)
        if abandon and item.attempt_no == 1 and share(item.idempotency_key, 6, 0):
            abandoned += 1  # the worker goes silent on this claim
            continue
        with history.operation(process, "complete", {"outbox_id": str(item.outbox_id), "attempt_no": item.attempt_no,
                                                     "state": result.state}) as outcome:
            done = worker.complete(item, result)
            outcome.value = {"outbox_id": str(item.outbox_id), "attempt_no": done.attempt_no, "state": done.state}
        terminal += done.state in TERMINAL
    return terminal, abandoned


class Load:
    def __init__(self, url: str, history: History, rail: FakeRail, targets: dict[str, int]) -> None:
        self.url, self.history, self.rail, self.targets = url, history, rail, targets
        self.stop = threading.Event()
        self.enough = threading.Event()
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self._abandoned = threading.Semaphore(0)
        self._lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def start(self, ingesters: int = 2, workers: int = 2) -> None:
        targets = [(self._ingest, f"ingest-{n}") for n in range(ingesters)]
        targets += [(self._work, f"worker-{n}") for n in range(workers)]
        targets.append((self._repair, "repair"))
        for target, process in targets:
            thread = threading.Thread(target=self._until_error, args=(target, process), name=process, daemon=True)
            thread.start()
            self.threads.append(thread)

    def join(self, timeout: float = 60.0) -> list[str]:
        """The threads still running after `timeout` (none, normally)."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)
        return [thread.name for thread in self.threads if thread.is_alive()]

    def _until_error(self, target: Any, process: str) -> None:
        try:
            target(process)
        except psycopg.Error as exc:  # the crash ends the thread; the history holds the unknown call
            with self._lock:
                self.errors.append(f"{process}: {exc.sqlstate or type(exc).__name__}")

    def _bump(self, what: str, by: int = 1) -> None:
        with self._lock:
            self.counts[what] += by
            if all(self.counts[k] >= v for k, v in self.targets.items()):
                self.enough.set()

    def _ingest(self, process: str) -> None:
        with role_connection(self.url, "outbox_ingest", name=process) as conn:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                enqueue_recorded(self.history, conn, process, enqueue_value(process, n))
                self._bump("enqueue_ok")

    def _work(self, process: str) -> None:
        with Worker.connected(self.url, process) as worker:
            while not self.stop.is_set():
                terminal, abandoned = work_recorded(self.history, worker, process, self.rail, 4, abandon=True)
                for _ in range(abandoned):
                    self._abandoned.release()
                self._bump("terminal", terminal)

    def _repair(self, process: str) -> None:
        with Client.connect(self.url, Role.REPAIR, name=process) as client:
            while not self.stop.is_set():
                if not self._abandoned.acquire(timeout=0.05):
                    continue
                with self.history.operation(process, "repair", {"threshold_seconds": 0}) as outcome:
                    rows = client.repair(0, 20)
                    outcome.value = [[str(r.outbox_id), r.attempt_no, r.new_state] for r in rows]
                self._bump("repaired", len(rows))
