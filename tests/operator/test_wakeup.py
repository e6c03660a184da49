"""Prompt wake-up, opt-in (issue 16, item 5): with the operator's notify_on_enqueue on, a committed
enqueue wakes an idle `outbox worker --listen` at once instead of at its next poll; with it off the
same worker claims by polling; a killed listen connection is noticed, the worker polls meanwhile,
reconnects and goes on. The setting is the operator's, kept in the settings history, and nothing a
caller can SET sends a notification.

Prompt means before the poll interval could have elapsed: the listening workers here poll every
POLL_NEVER seconds, and every wait below gives up after BOUND seconds, far less.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest

from runner.client import Client, FileItem, Role
from tests.conftest import Database
from tests.helpers import api, zombies
from tests.helpers.support import ProofRecord, role_connection, sqlstate_of


def one(conn: psycopg.Connection, query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None

pytestmark = pytest.mark.proof

REPO = Path(__file__).resolve().parents[2]
POLL_NEVER = 3600.0  # a listening worker's poll interval: no claim within BOUND can come from polling
BOUND = 120.0  # the failure bound of every wait for a log line
CHANNEL = "payment_outbox_enqueued"


@pytest.fixture
def notify_on(clean_database: Database) -> Iterator[Database]:
    """notify_on_enqueue on, set the only way there is (as outbox_operator); off again afterwards."""
    with Client.connect(clean_database.url, Role.OPERATOR, name="operator") as client:
        client.set_settings(notify_on_enqueue=True)
    try:
        yield clean_database
    finally:
        with Client.connect(clean_database.url, Role.OPERATOR, name="operator") as client:
            client.set_settings(notify_on_enqueue=False)


class WorkerProcess:
    """`outbox worker` as a subprocess; its JSON log lines read as they come."""

    def __init__(self, url: str, *args: str) -> None:
        command = [str(zombies.OUTBOX), "worker", "--rail", "tests.helpers.fakerail:always_dispatched",
                   "--worker-id", "wake", *args]
        self.process = subprocess.Popen(command, env={**os.environ, "DATABASE_URL": url}, cwd=REPO,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []  # every line read
        self._unmatched: list[dict[str, Any]] = []  # lines read while waiting for another
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for raw in stream:
            if raw.strip():
                self.lines.put(json.loads(raw))

    def next(self, event: str, **fields: Any) -> dict[str, Any]:
        """The first log line of `event` with these fields not returned before, waiting BOUND
        seconds at most for it."""
        def matches(line: dict[str, Any]) -> bool:
            return line["event"] == event and all(line.get(k) == v for k, v in fields.items())

        for line in self._unmatched:
            if matches(line):
                self._unmatched.remove(line)
                return line
        deadline = time.monotonic() + BOUND
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {event} line {fields} within {BOUND:.0f} s; read: "
                                     f"{[line['event'] for line in self.seen]}") from None
            self.seen.append(line)
            if matches(line):
                return line
            self._unmatched.append(line)

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=BOUND)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        return code, self.process.stderr.read() if self.process.stderr else ""


@contextmanager
def worker_process(url: str, proof: ProofRecord, *args: str) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(url, *args)
    try:
        yield worker
    finally:
        code, stderr = worker.stop()
        proof.observe(exit_code=code, stderr=stderr[-2000:], log=[line["event"] for line in worker.seen])
    proof.check("the worker stopped on SIGTERM with exit 0", want=0, have=code)


def enqueue(url: str, n: int) -> str:
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        return str(client.enqueue(f"wake-{n}", "bank-w", f"wake/{n}", "sepa", {"n": n}).outbox_id)


def claimed_promptly(worker: WorkerProcess, url: str, n: int) -> tuple[str, float]:
    """Enqueue item n, wait for the worker's completion of it: (the state, seconds it took)."""
    started = time.monotonic()
    outbox_id = enqueue(url, n)
    line = worker.next("completed", outbox_id=outbox_id)
    return line["state"], time.monotonic() - started


def test_the_notify_setting_is_the_operators_and_every_change_is_kept(clean_database: Database,
                                                                      proof: ProofRecord) -> None:
    url = clean_database.url
    with Client.connect(url, Role.OPERATOR, name="operator") as client:
        proof.check("off by default", want=False, have=client.set_settings().notify_on_enqueue)
        proof.check("the installation is in the history", want=True,
                    have=("notify_on_enqueue", None, "false") in
                    [(c.setting, c.old_value, c.new_value) for c in client.settings_history()])
        before = client.settings_history()
        try:
            proof.check("the operator switches it on", want=True,
                        have=client.set_settings(notify_on_enqueue=True).notify_on_enqueue)
            proof.check("switching it on again changes nothing", want=True,
                        have=client.set_settings(notify_on_enqueue=True).notify_on_enqueue)
            proof.check("changing the maximum leaves it on", want=(7, True),
                        have=(lambda s: (s.max_attempt_count, s.notify_on_enqueue))(client.set_settings(7)))
        finally:
            client.set_settings(20, notify_on_enqueue=False)
        login = one(client.conn, "SELECT session_user")
        after = client.settings_history()
    proof.check("every change is kept, with the login that made it",
                want=[("notify_on_enqueue", "false", "true", login), ("max_attempt_count", "20", "7", login),
                      ("max_attempt_count", "7", "20", login), ("notify_on_enqueue", "true", "false", login)],
                have=[(c.setting, c.old_value, c.new_value, c.changed_by) for c in after[len(before):]])
    for role in (Role.INGEST, Role.EXECUTOR, Role.REPAIR, Role.READONLY, Role.AUDITOR):
        with Client.connect(url, role, name=str(role)) as client:
            proof.check(f"{role} cannot switch it", want="42501",
                        have=sqlstate_of(lambda: client.set_settings(notify_on_enqueue=True)))


def _notified(conn: psycopg.Connection, action: Any) -> list[tuple[str, str]]:
    """The notifications `conn` itself receives while `action` runs on it. A session's own
    notifications reach it when its transaction commits, before the statement returns."""
    got: list[tuple[str, str]] = []

    def handler(notify: psycopg.Notify) -> None:
        got.append((notify.channel, notify.payload))

    conn.add_notify_handler(handler)
    try:
        action()
        conn.execute("SELECT 1")  # a round trip after the commit, whatever the action's last one was
    finally:
        conn.remove_notify_handler(handler)
    return got


def test_enqueue_notifies_once_per_statement_only_when_the_operator_says(clean_database: Database,
                                                                         proof: ProofRecord) -> None:
    url = clean_database.url
    with Client.connect(url, Role.EXECUTOR, name="executor") as executor:
        proof.check("the channel wakeup_channel() names, as a worker reads it", want=CHANNEL,
                    have=executor.wakeup_channel())
    with Client.connect(url, Role.INGEST, name="ingest") as client:
        conn = client.conn
        conn.execute(f"LISTEN {CHANNEL}")
        proof.check("off: an enqueue notifies nobody", want=[],
                    have=_notified(conn, lambda: client.enqueue("n-0", "bank-n", "n/0", "sepa", {})))
        conn.execute("SELECT set_config('payment_outbox.notify_on_enqueue', 'on', false)")
        proof.check("off: a session setting of the caller changes nothing", want=[],
                    have=_notified(conn, lambda: client.enqueue("n-1", "bank-n", "n/1", "sepa", {})))
        with Client.connect(url, Role.OPERATOR, name="operator") as operator:
            operator.set_settings(notify_on_enqueue=True)
        try:
            proof.check("on: one enqueue, one notification, empty payload", want=[(CHANNEL, "")],
                        have=_notified(conn, lambda: client.enqueue("n-2", "bank-n", "n/2", "sepa", {})))
            # A retry of a known key returns before enqueue's INSERT: no notification (issue 25,
            # item 10; the docs said one was sent).
            proof.check("on: a retry of the same key, no notification", want=[],
                        have=_notified(conn, lambda: client.enqueue("n-2", "bank-n", "n/2", "sepa", {})))

            def five_in_one_transaction() -> None:
                with conn.transaction():
                    for n in range(3, 8):
                        client.enqueue(f"n-{n}", "bank-n", f"n/{n}", "sepa", {})

            proof.check("on: five enqueues in one transaction, one notification", want=[(CHANNEL, "")],
                        have=_notified(conn, five_in_one_transaction))
            proof.check("on: a payment file of five, one notification", want=[(CHANNEL, "")],
                        have=_notified(conn, lambda: client.enqueue_batch(
                            [FileItem(f"f-{n}", "bank-f", f"f/{n}", "sepa", {}) for n in range(5)])))
        finally:
            with Client.connect(url, Role.OPERATOR, name="operator") as operator:
                operator.set_settings(notify_on_enqueue=False)
        proof.check("off again: nobody notified", want=[],
                    have=_notified(conn, lambda: client.enqueue("n-9", "bank-n", "n/9", "sepa", {})))
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_a_listening_worker_claims_a_committed_enqueue_at_once(notify_on: Database, proof: ProofRecord) -> None:
    url = notify_on.url
    with worker_process(url, proof, "--listen", "--poll-interval-seconds", str(POLL_NEVER)) as worker:
        worker.next("listen_started")
        worker.next("worker_idle")  # its first claim found nothing: from here on it waits
        first = claimed_promptly(worker, url, 1)
        second = claimed_promptly(worker, url, 2)  # idle again after the first: woken again
        proof.observe(enqueue_to_completion_seconds=[first[1], second[1]])
    proof.check(f"both enqueues completed within {BOUND:.0f} s, the worker polling every {POLL_NEVER:.0f} s",
                want=["DISPATCHED", "DISPATCHED"], have=[first[0], second[0]])
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_with_the_setting_off_a_listening_worker_claims_by_polling(clean_database: Database,
                                                                   proof: ProofRecord) -> None:
    url = clean_database.url
    with worker_process(url, proof, "--listen", "--poll-interval-seconds", "0.2") as worker:
        worker.next("listen_started")
        worker.next("worker_idle")
        state, _ = claimed_promptly(worker, url, 1)
    proof.check("the enqueue was completed by polling", want="DISPATCHED", have=state)
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_a_killed_listen_connection_is_noticed_and_the_worker_keeps_claiming(notify_on: Database,
                                                                             proof: ProofRecord) -> None:
    url = notify_on.url
    with worker_process(url, proof, "--listen", "--poll-interval-seconds", str(POLL_NEVER)) as worker:
        pid = worker.next("listen_started")["pid"]
        worker.next("worker_idle")
        with role_connection(url, None, name="killer") as owner:
            proof.check("the listen connection is terminated", want=True,
                        have=one(owner, "SELECT pg_terminate_backend(%s)", (pid,)))
        lost = worker.next("listen_lost")
        # Enqueued after the loss was noticed: the reconnection's wake-up or its notification claims it.
        during = claimed_promptly(worker, url, 1)
        back = worker.next("listen_started")
        after = claimed_promptly(worker, url, 2)  # the new listen connection's notification
    proof.observe(listen_lost=lost)
    proof.check("the loss says polling is the fallback, and the listener reconnected on a new connection",
                want=("polling", True, True), have=(lost["fallback"], back["reconnected"], back["pid"] != pid))
    proof.check("the enqueues after the loss were completed", want=["DISPATCHED", "DISPATCHED"],
                have=[during[0], after[0]])
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
