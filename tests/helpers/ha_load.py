"""The load of the HA proofs, across a failover: ingester threads (an enqueue whose answer was lost
is retried with the same key until it answers, reconnecting with the runner's backoff), two real
`outbox worker` processes (one with --listen) and a real `outbox repair --loop`, all through URLs
that follow the leader. Mid-load, once two dispatches are held in the rail (tests/helpers/ha_rail.py),
the leader's Patroni and postmaster are SIGKILLed; the load goes on on the new leader; then the
processes drain the queue and stop on SIGTERM. Every enqueue and every completion a worker
logged goes into a History (runner/harness/history.py) for the checker.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psycopg

from runner import db, reconnect
from runner.client import Client, Role
from runner.clusters.ha import HACluster, Node
from runner.harness import history as hist
from tests.helpers import api, ha_rail
from tests.helpers.load import PARTICIPANTS, enqueue_recorded

REPO = Path(__file__).resolve().parents[2]
OUTBOX = Path(sys.executable).parent / "outbox"
INGESTERS = 2
MAX_PER_INGESTER = 1000  # a bound; the ingesters stop earlier, once AFTER_PROMOTION more are acknowledged
# Enqueues acknowledged but not yet completed before an ingester takes a new key: the load follows
# the workers instead of running ahead of them (unpaced, two ingesters had written every key before
# the kill on some runs, and the proof then waited for enqueues that never came).
BACKLOG = 40
HELD = 2  # items held in the rail across the kill: the first keys taken after the load is under way
BEFORE_KILL = {"acknowledged": 80, "completed": 20}
AFTER_PROMOTION = 100  # enqueues acknowledged after the promotion before the ingesters stop
THRESHOLD_SECONDS = 5  # repair requeues claims older than this: the held ones, on the new leader
WAIT_SECONDS = 150.0


@dataclass
class Urls:
    """Who connects where: through the multi-host URL, or through PgBouncer with logins of their own."""

    ingest: str
    worker: str
    repair: str
    listen: str | None = None  # the worker's --listen-url; None: its URL
    owner: str = ""  # the package owner, for reading the outcome


@dataclass
class Outcome:
    history: hist.History
    lines: list[dict[str, Any]]
    rail_calls: list[dict[str, Any]]
    acks: list[tuple[float, int | None, str, int]]  # (epoch seconds, server port, process, n)
    gated: list[dict[str, Any]]
    killed_at: float
    promoted_at: float
    old: Node
    new: Node
    exit_codes: dict[str, int | None]
    ingest_errors: list[str]
    first_tried: dict[tuple[str, int], float] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def events(self, event: str, **where: Any) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == event
                and all(line.get(k) == v for k, v in where.items())]

    def completions_on_new_leader(self) -> list[float]:
        """Times of the completions a worker thread logged after it reconnected to the new leader
        (a thread's lines are in order; its connection before that was to the old leader)."""
        since: dict[str, float] = {}
        found = []
        for line in self.lines:
            if line.get("event") == "reconnected" and line.get("component") == "worker" \
                    and line.get("port") == self.new.pg_port and epoch(line) > self.killed_at:
                since.setdefault(line["worker_id"], epoch(line))
            elif line.get("event") == "completed" and line.get("worker_id") in since:
                found.append(epoch(line))
        return found

    def seconds_to_first(self, times: list[float]) -> float | None:
        after = [t for t in times if t > self.killed_at]
        return round(min(after) - self.killed_at, 3) if after else None


def epoch(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(line["timestamp"]).timestamp()


def enqueue_value(process: str, n: int, gate: bool = False) -> dict[str, Any]:
    payload = {"n": n, "by": process, "gate": gate, "fail": n % 13 == 7}
    return {"instruction_id": f"ha-{process}-{n}", "idempotency_key": f"{process}/{n}",
            "participant_id": PARTICIPANTS[n % len(PARTICIPANTS)], "payload": payload}


class Ingesters:
    def __init__(self, url: str, history: hist.History, processes: Processes | None = None,
                 per_ingester: int = MAX_PER_INGESTER) -> None:
        self.url, self.history, self.per_ingester, self.processes = url, history, per_ingester, processes
        self.stop = threading.Event()
        self.acks: list[tuple[float, int | None, str, int]] = []
        self.first_tried: dict[tuple[str, int], float] = {}  # (process, n): time.time() before its first try
        self.errors: list[str] = []
        self.retries = 0
        self.to_hold = 0  # the next keys taken are held in the rail (payload gate), gate()
        # While set, only keys still to be held are taken: the load does not run through its keys
        # while the proof waits for its held dispatches (on an idle machine with asynchronous
        # commits the workers complete hundreds a second, and every key was gone before the kill).
        self.holding_new_keys = False
        self._lock = threading.Condition()
        self.threads = [threading.Thread(target=self._guarded, args=(f"ingest-{n}",), daemon=True)
                        for n in range(INGESTERS)]

    def start(self) -> Ingesters:
        for thread in self.threads:
            thread.start()
        return self

    def gate(self, count: int) -> None:
        """The next `count` keys any ingester takes are held in the rail when dispatched."""
        with self._lock:
            self.to_hold += count

    def hold_new_keys(self, holding: bool) -> None:
        with self._lock:
            self.holding_new_keys = holding
            self._lock.notify_all()

    def _may_take_a_key(self) -> bool:
        with self._lock:
            return not self.holding_new_keys or self.to_hold > 0

    def acknowledged(self) -> int:
        with self._lock:
            return len(self.acks)

    def wait_for(self, count: int, seconds: float = WAIT_SECONDS) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self.acks) >= count or bool(self.errors), seconds) \
                and not self.errors

    def join(self, seconds: float = WAIT_SECONDS) -> list[str]:
        for thread in self.threads:
            thread.join(seconds)
        return [t.name for t in self.threads if t.is_alive()]

    def _guarded(self, process: str) -> None:
        try:
            self._ingest(process)
        except BaseException as exc:  # noqa: BLE001 - the proof reports it
            with self._lock:
                self.errors.append(f"{process}: {db.sqlstate(exc) or type(exc).__name__}: {exc}")
                self._lock.notify_all()

    def _paced(self) -> bool:
        """Waits while BACKLOG acknowledged enqueues are not yet completed by the workers (their
        lines); False once the ingesters are told to stop."""
        processes = self.processes
        while not self.stop.is_set():
            if processes is None or processes.wait_for(
                    lambda _: (self.acknowledged() - processes.completed < BACKLOG and self._may_take_a_key())
                    or self.stop.is_set(), 0.5):
                return not self.stop.is_set()
        return False

    def _ingest(self, process: str) -> None:
        conn: psycopg.Connection | None = None
        backoff = reconnect.Backoff()
        try:
            for n in range(self.per_ingester):
                if not self._paced():  # between keys only: a key once tried is retried until it answers
                    return
                with self._lock:
                    held, self.to_hold = self.to_hold > 0, max(self.to_hold - 1, 0)
                    self.first_tried[(process, n)] = time.time()
                value = enqueue_value(process, n, gate=held)
                while True:
                    try:
                        if conn is None:
                            conn = db.connect(self.url, application_name=process, autocommit=True,
                                              role=str(Role.INGEST))
                        enqueue_recorded(self.history, conn, process, value)
                    except psycopg.Error as exc:
                        if not reconnect.is_reconnectable(exc):
                            raise
                        if conn is not None:
                            conn.close()
                            conn = None
                        with self._lock:
                            self.retries += 1
                        time.sleep(backoff.next())  # the client's backoff before it tries the key again
                        continue  # the same key again, until it answers
                    backoff.reset()
                    with self._lock:
                        self.acks.append((time.time(), conn.info.port, process, n))
                        self._lock.notify_all()
                    break
        finally:
            if conn is not None:
                conn.close()


class Processes:
    """The `outbox worker` and `outbox repair --loop` subprocesses and their JSON lines."""

    def __init__(self, urls: Urls, rail_log: Path, gate: Path) -> None:
        self.lines: list[dict[str, Any]] = []
        self.completed = 0  # "completed" lines so far
        self.new_line = threading.Condition()
        env = {**os.environ, "OUTBOX_HA_RAIL_LOG": str(rail_log), "OUTBOX_HA_GATE": str(gate)}
        worker = [str(OUTBOX), "worker", "--rail", "tests.helpers.ha_rail:rail", "--batch-size", "4",
                  "--concurrency", "2", "--poll-interval-seconds", "0.2"]
        listen = ["--listen"] + (["--listen-url", urls.listen] if urls.listen else [])
        commands = {
            "worker-a": ([*worker, "--worker-id", "wa", *listen], urls.worker),
            "worker-b": ([*worker, "--worker-id", "wb"], urls.worker),
            "repair": ([str(OUTBOX), "repair", "--loop", "--interval-seconds", "0.5", "--threshold-seconds",
                        str(THRESHOLD_SECONDS)], urls.repair),
        }
        self.running: dict[str, subprocess.Popen[str]] = {}
        self.readers: list[threading.Thread] = []
        for name, (command, url) in commands.items():
            process = subprocess.Popen(command, env={**env, "DATABASE_URL": url}, cwd=REPO, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.running[name] = process
            for stream in (process.stdout, process.stderr):
                reader = threading.Thread(target=self._read, args=(name, stream), daemon=True)
                reader.start()
                self.readers.append(reader)

    def _read(self, name: str, stream: IO[str] | None) -> None:
        assert stream is not None
        for raw in stream:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"event": "stderr", "text": raw.rstrip()}
            line["process"] = name
            with self.new_line:
                self.lines.append(line)
                self.completed += line.get("event") == "completed"
                self.new_line.notify_all()

    def wait_for(self, what: Callable[[list[dict[str, Any]]], bool], seconds: float = WAIT_SECONDS) -> bool:
        with self.new_line:
            return self.new_line.wait_for(lambda: what(self.lines), seconds)

    def count(self, event: str, **where: Any) -> int:
        with self.new_line:
            return sum(1 for line in self.lines if line.get("event") == event
                       and all(line.get(k) == v for k, v in where.items()))

    def stop(self, seconds: float = 60) -> dict[str, int | None]:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, process in self.running.items():
            try:
                codes[name] = process.wait(seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = process.wait()
        for reader in self.readers:
            reader.join(30)
        return codes


def notify_on(url: str) -> None:
    with Client.connect(url, Role.OPERATOR, name="ha settings") as client:
        client.set_settings(notify_on_enqueue=True)


def wait_drained(url: str, seconds: float = WAIT_SECONDS) -> dict[str, Any]:
    """Polls the queue on the leader until it is empty (the workers and repair drain it), bounded."""
    deadline = time.monotonic() + seconds
    while True:
        found = api.queue(url)
        if found["queue_depth"] == 0 or time.monotonic() > deadline:
            return found
        time.sleep(0.2)  # polling another process's progress with a bound


def run(ha: HACluster, urls: Urls, directory: Path, name: str, *,
        before_kill: Callable[[Ingesters, Processes], None] | None = None,
        after_kill: Callable[[Node, Node], None] | None = None,
        on_killed: Callable[[], None] | None = None) -> Outcome:
    """The whole load across one failover; `before_kill` runs once the load is under way,
    `on_killed` right after the SIGKILLs (before the promotion), `after_kill` after the promotion."""
    history = hist.History(name=name)
    rail_log, gate_path = directory / "rail.jsonl", directory / "gate"
    gate_path.write_text("")
    rail_log.write_text("")
    notify_on(urls.owner)
    with gate_path.open() as gate:
        fcntl.flock(gate, fcntl.LOCK_EX)
        processes = Processes(urls, rail_log, gate_path)
        ingesters = Ingesters(urls.ingest, history, processes).start()
        try:
            under_way = (ingesters.wait_for(BEFORE_KILL["acknowledged"])
                         and processes.wait_for(lambda lines: sum(1 for x in lines if x.get("event") == "completed")
                                                >= BEFORE_KILL["completed"]))
            if not under_way:
                raise AssertionError(f"the load did not get under way: {ingesters.errors} {processes.lines[-20:]}")
            if before_kill is not None:
                before_kill(ingesters, processes)
            # Dispatches held in the rail at the kill, taken just before it (younger than the
            # repair threshold, so they are in flight, not yet requeued, when the leader dies).
            ingesters.gate(HELD)
            ingesters.hold_new_keys(True)
            if not processes.wait_for(lambda lines: sum(1 for x in lines if x.get("event") == "rail_gated") >= HELD):
                raise AssertionError(f"no dispatch was held in the rail: {ingesters.errors} {processes.lines[-20:]}")
            ingesters.hold_new_keys(False)  # enqueues are in flight again when the leader dies
            with processes.new_line:
                gated = [dict(x) for x in processes.lines if x.get("event") == "rail_gated"]
            killed_at = time.time()
            old, new = ha.kill_leader(on_killed=on_killed)
            killed_at = ha.killed_at
            promoted_at = time.time()
            if after_kill is not None:
                after_kill(old, new)
            fcntl.flock(gate, fcntl.LOCK_UN)  # the held dispatches return; their connections are gone
            if not ingesters.wait_for(ingesters.acknowledged() + AFTER_PROMOTION):
                raise AssertionError(f"the load did not go on after the promotion: {ingesters.acknowledged()} "
                                     f"acknowledged, errors {ingesters.errors}, {processes.lines[-20:]}")
        except BaseException:
            ingesters.stop.set()
            processes.stop(seconds=5)
            raise
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
            ingesters.stop.set()
            still_running = ingesters.join()
        drained = wait_drained(urls.owner)
        exit_codes = processes.stop()
    if still_running or ingesters.errors:
        raise AssertionError(f"ingesters: still running {still_running}, errors {ingesters.errors}")
    if drained["queue_depth"]:
        raise AssertionError(f"the queue did not drain: {drained}; last lines {processes.lines[-30:]}")
    for line in processes.lines:  # each completion a worker was told of, as an acknowledged operation
        if line.get("event") == "completed":
            value = {"outbox_id": line["outbox_id"], "attempt_no": line["attempt_no"], "state": line["state"]}
            history.end(history.invoke(line["worker_id"], "complete", value), hist.OK, value)
    outcome = Outcome(history=history, lines=processes.lines, rail_calls=ha_rail.calls(str(rail_log)),
                      acks=ingesters.acks, gated=gated, killed_at=killed_at, promoted_at=promoted_at, old=old,
                      new=new, exit_codes=exit_codes, ingest_errors=ingesters.errors,
                      first_tried=dict(ingesters.first_tried))
    outcome.counts["ingest_retries"] = ingesters.retries
    return outcome


@dataclass(frozen=True)
class Item:
    outbox_id: str
    instruction_id: str
    idempotency_key: str
    participant_id: str
    sequence_id: int


def items(owner_url: str) -> list[Item]:
    """Every item of the ledger (its identity, from its rows), read as the owner."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT DISTINCT outbox_id::text, instruction_id, idempotency_key, participant_id, sequence_id "
            "FROM payment_outbox.payment_outbox_attempts ORDER BY 1").fetchall()
    return [Item(*row) for row in rows]


def acknowledged_enqueues(history: hist.History) -> dict[tuple[str, str], tuple[str, int]]:
    """(instruction_id, key) -> (outbox_id, sequence_id) as the client was told."""
    found: dict[tuple[str, str], tuple[str, int]] = {}
    for invoked, ended in history.completed("enqueue"):
        if ended["type"] == hist.OK:
            found[hist.key_of(invoked["value"])] = (ended["value"]["outbox_id"], ended["value"]["sequence_id"])
    return found


def gaps(found: list[Item]) -> dict[str, list[int]]:
    """Per participant, the sequence ids missing from 1..max (and any taken twice)."""
    by_participant: dict[str, list[int]] = defaultdict(list)
    for item in found:
        by_participant[item.participant_id].append(item.sequence_id)
    problems: dict[str, list[int]] = {}
    for participant, ids in by_participant.items():
        if sorted(ids) != list(range(1, len(ids) + 1)):
            problems[participant] = sorted(set(range(1, max(ids) + 1)) - set(ids)) + \
                [i for i, n in Counter(ids).items() if n > 1]
    return problems


def repeated_rail_calls(outcome: Outcome, ledger: list[Any]) -> list[dict[str, Any]]:
    """Each key the rail saw more than once, with the claims behind the extra calls and what ended
    each of them in the ledger (ZOMBIE_REQUEUE by repair, say)."""
    next_state = {(str(row.outbox_id), row.attempt_no): row.state for row in ledger}
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in outcome.rail_calls:
        by_key[str(call["key"])].append(call)
    found = []
    for key, calls in sorted(by_key.items()):
        if len(calls) < 2:
            continue
        found.append({"key": key, "calls": len(calls), "claims": [
            {"outbox_id": c["outbox_id"], "attempt_no": c["attempt_no"],
             "ended_by": next_state.get((str(c["outbox_id"]), int(c["attempt_no"]) + 1), "nothing (lost)"),
             "called_after_kill": float(c["time"]) > outcome.killed_at} for c in calls]})
    return found
