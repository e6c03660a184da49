"""Duplicate storm: 64 callers released at once enqueue the same key, against one uncontended call.

A control runs the same 64 callers with a key and participant each: what 64 concurrent calls cost
on this server with nothing shared, so the storm's own cost (the duplicates queueing on one key)
can be told from the cost of 64 backends sharing the CPUs.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import psycopg

from runner import db
from runner.bench.pgbench import percentile
from runner.client import Client

PAYLOAD = {"amount": 100, "currency": "EUR"}


@dataclass(frozen=True)
class StormResult:
    callers: int
    rounds: int
    single_calls: int
    single_p50_ms: float
    single_p99_ms: float
    storm_p50_ms: float
    storm_p99_ms: float
    independent_p50_ms: float  # the control: 64 concurrent calls, every one its own key and participant
    independent_p99_ms: float
    items_per_round: list[int]  # distinct outbox_ids the callers of each round got back: 1 each

    def as_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def _call(conn: psycopg.Connection, instruction_id: str, participant_id: str, key: str) -> tuple[float, str]:
    began = time.perf_counter()
    enqueued = Client(conn, prepare=True).enqueue(instruction_id, participant_id, key, "SEPA", PAYLOAD)
    return (time.perf_counter() - began) * 1000.0, str(enqueued.outbox_id)


def single_calls(url: str, count: int) -> list[float]:
    """Latency of `count` calls one after another with new keys on an otherwise idle outbox."""
    with db.connection(url, application_name="outbox bench single", autocommit=True, role="outbox_ingest") as conn:
        _call(conn, f"warm-{uuid.uuid4()}", "participant-single", "warm")
        return [_call(conn, f"single-{uuid.uuid4()}", "participant-single", "key")[0] for _ in range(count)]


def run(url: str, callers: int = 64, rounds: int = 5, singles: int = 200) -> StormResult:
    single = single_calls(url, singles)
    storm, items = released_calls(url, callers, rounds, shared_key=True)
    independent, _ = released_calls(url, callers, rounds, shared_key=False)
    return StormResult(callers=callers, rounds=rounds, single_calls=singles,
                       single_p50_ms=percentile(single, 0.50), single_p99_ms=percentile(single, 0.99),
                       storm_p50_ms=percentile(storm, 0.50), storm_p99_ms=percentile(storm, 0.99),
                       independent_p50_ms=percentile(independent, 0.50),
                       independent_p99_ms=percentile(independent, 0.99),
                       items_per_round=[len(found) for found in items])


def released_calls(url: str, callers: int, rounds: int, shared_key: bool) -> tuple[list[float], list[set[str]]]:
    """`rounds` times, `callers` threads released by one barrier each make one call; their latencies and,
    per round, the distinct outbox_ids they got back."""
    connections = [db.connect(url, application_name=f"outbox bench storm {n}", autocommit=True,
                              role="outbox_ingest") for n in range(callers)]
    barrier = threading.Barrier(callers)
    keys = [f"storm-{uuid.uuid4()}" for _ in range(rounds)]
    latencies: list[list[float]] = [[] for _ in range(callers)]
    items: list[set[str]] = [set() for _ in range(rounds)]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def caller(index: int) -> None:
        conn = connections[index]
        participant = "participant-storm" if shared_key else f"participant-storm-{index}"
        try:
            _call(conn, f"warm-{uuid.uuid4()}", participant, "warm")  # connection, plan and allocator ready
            for round_no, round_key in enumerate(keys):
                key = round_key if shared_key else f"{round_key}-{index}"
                barrier.wait()
                took, outbox_id = _call(conn, key, participant, key)
                latencies[index].append(took)
                with lock:
                    items[round_no].add(outbox_id)
        except (psycopg.Error, threading.BrokenBarrierError) as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=caller, args=(n,), name=f"bench-storm-{n}") for n in range(callers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for conn in connections:
            conn.close()
    if errors:
        raise errors[0]
    return [value for per_caller in latencies for value in per_caller], items
