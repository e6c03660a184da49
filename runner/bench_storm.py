"""Duplicate storm: 64 callers released at once enqueue the same key, against one uncontended call."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import psycopg

from runner import db
from runner.bench_pgbench import percentile

ENQUEUE = ("SELECT outbox_id FROM payment_outbox.enqueue_payment_outbox(%s, %s, %s, 'SEPA', "
           "'{\"amount\": 100, \"currency\": \"EUR\"}'::jsonb)")


@dataclass(frozen=True)
class StormResult:
    callers: int
    rounds: int
    single_calls: int
    single_p50_ms: float
    single_p99_ms: float
    storm_p50_ms: float
    storm_p99_ms: float
    items_per_round: list[int]  # distinct outbox_ids the callers of each round got back: 1 each

    def as_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def _call(conn: psycopg.Connection, instruction_id: str, participant_id: str, key: str) -> tuple[float, str]:
    began = time.perf_counter()
    row = conn.execute(ENQUEUE, (instruction_id, participant_id, key), prepare=True).fetchone()
    return (time.perf_counter() - began) * 1000.0, str(row[0]) if row else ""


def single_calls(url: str, count: int) -> list[float]:
    """Latency of `count` calls one after another with new keys on an otherwise idle outbox."""
    with db.connection(url, application_name="outbox bench single", autocommit=True, role="outbox_ingest") as conn:
        _call(conn, f"warm-{uuid.uuid4()}", "participant-single", "warm")
        return [_call(conn, f"single-{uuid.uuid4()}", "participant-single", "key")[0] for _ in range(count)]


def run(url: str, callers: int = 64, rounds: int = 5, singles: int = 200) -> StormResult:
    single = single_calls(url, singles)
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
        try:
            _call(conn, f"warm-{uuid.uuid4()}", "participant-storm-warm", "warm")  # connection and plan ready
            for round_no, key in enumerate(keys):
                barrier.wait()
                took, outbox_id = _call(conn, key, "participant-storm", key)
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
    storm = [value for per_caller in latencies for value in per_caller]
    return StormResult(callers=callers, rounds=rounds, single_calls=singles,
                       single_p50_ms=percentile(single, 0.50), single_p99_ms=percentile(single, 0.99),
                       storm_p50_ms=percentile(storm, 0.50), storm_p99_ms=percentile(storm, 0.99),
                       items_per_round=[len(found) for found in items])
