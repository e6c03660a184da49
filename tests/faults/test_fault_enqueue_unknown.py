"""Fault: an enqueue's session is terminated before its client hears the outcome.

Twice: once while the enqueue waits for the participant's allocator (it never commits), once
while its COMMIT waits for a synchronous standby that never answers (it has committed locally).
The client gets the same lost connection both times and cannot tell them apart; retrying the same
key gives exactly one item either way, with no sequence gap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.conftest import Database, Server
from tests.helpers import api
from tests.helpers.faults import (
    ABSENT_STANDBY,
    commits_wait_for_a_standby,
    terminate_backend,
    wait_for_backend,
    wait_for_setting,
)
from tests.helpers.support import ProofRecord, role_connection

pytestmark = pytest.mark.proof


class InThread:
    """Runs `call` in a thread of its own; `error` is what it raised."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.error: BaseException | None = None
        self.result: Any = None
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.result = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def join(self) -> None:
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the call did not return within 60 s"


def check_retry_gives_one_item(url: str, proof: ProofRecord, killed_at: Any, *, committed: bool,
                               sequence_id: int, depth: int) -> None:
    first = api.enqueue_once(url, "unknown-1", "bank-u", "unknown/1")
    again = api.enqueue_once(url, "unknown-1", "bank-u", "unknown/1")
    proof.observe(retry=first, killed_at=killed_at)
    proof.check("retrying the key twice gives one item", want=first["outbox_id"], have=again["outbox_id"])
    proof.check("the item was created by the killed session (it committed)" if committed
                else "the item was created by the retry (the killed session never committed)",
                want=committed, have=first["created_at"] < killed_at)
    proof.check("its sequence id follows without a gap", want=sequence_id, have=first["sequence_id"])
    proof.check("queue depth", want=depth, have=api.queue(url)["queue_depth"])
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_killed_while_waiting_for_the_allocator(server: Server, clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    api.enqueue_once(url, "unknown-0", "bank-u", "unknown/0")
    with role_connection(url, "outbox_ingest", name="holder", autocommit=False) as holder, \
            role_connection(url, "outbox_ingest", name="victim") as victim:
        api.enqueue(holder, "unknown-2", "bank-u", "unknown/2")  # holds bank-u's allocator until commit
        holder_pid, victim_pid = holder.info.backend_pid, victim.info.backend_pid
        call = InThread(lambda: api.enqueue(victim, "unknown-1", "bank-u", "unknown/1"))
        waiting = wait_for_backend(server.admin_url, victim_pid, lambda s: holder_pid in s["blocked_by"],
                                   "a lock wait on the holder")
        killed_at = api.server_clock(url)
        terminated = terminate_backend(server.admin_url, victim_pid)
        call.join()
        holder.commit()
    proof.observe(victim_wait=waiting, client_error=repr(call.error))
    proof.check("the victim was terminated", want=True, have=terminated)
    proof.check("the client saw a lost connection, no outcome", want=True,
                have=isinstance(call.error, psycopg.OperationalError))
    check_retry_gives_one_item(url, proof, killed_at, committed=False, sequence_id=3, depth=3)


def test_killed_while_its_commit_waits_for_a_standby(crashable_server: Server, crash_database: Database,
                                                      proof: ProofRecord) -> None:
    url, admin_url = crash_database.url, crashable_server.admin_url
    with commits_wait_for_a_standby(admin_url), role_connection(url, "outbox_ingest", name="victim") as victim:
        wait_for_setting(victim, "synchronous_standby_names", ABSENT_STANDBY)

        def enqueue_and_commit() -> dict[str, Any]:
            with victim.transaction():
                return api.enqueue(victim, "unknown-1", "bank-u", "unknown/1")

        victim_pid = victim.info.backend_pid
        call = InThread(enqueue_and_commit)
        waiting = wait_for_backend(admin_url, victim_pid, lambda s: s["wait_event"] == "SyncRep",
                                   "the synchronous replication wait of its COMMIT")
        killed_at = api.server_clock(url)
        terminated = terminate_backend(admin_url, victim_pid)
        call.join()
    proof.observe(victim_wait=waiting, client_error=repr(call.error))
    proof.check("the victim was terminated", want=True, have=terminated)
    proof.check("the client saw a lost connection, no outcome", want=True,
                have=isinstance(call.error, psycopg.OperationalError))
    with role_connection(url, "outbox_ingest", name="retry") as retry:
        wait_for_setting(retry, "synchronous_standby_names", "")
    check_retry_gives_one_item(url, proof, killed_at, committed=True, sequence_id=1, depth=1)
