"""Dispatch throughput: worker threads claim a batch, then complete each item DISPATCHED."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import psycopg

from runner import db
from runner.client import Client
from runner.clusters import scratch


@dataclass(frozen=True)
class DispatchRun:
    workers: int
    batch_size: int
    seconds: float
    items: int
    pool: int
    exhausted: bool  # the seeded items ran out before the time was up

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, object]:
        return {**self.__dict__, "items_per_second": self.items_per_second}


def seed(owner_url: str, count: int) -> None:
    """As owner: `count` due items of a new participant, after clearing the queue of the last run."""
    with db.connection(owner_url, application_name="outbox bench seed", autocommit=True) as conn:
        scratch.empty_package_tables(conn)
        conn.execute(db.named_sql("bench_seed_pending"),
                     {"participant_id": f"bench-dispatch-{uuid.uuid4().hex[:8]}", "count": count})
        conn.execute("ANALYZE payment_outbox.payment_outbox_pending")


def run(url: str, workers: int, batch_size: int, seconds: float, pool: int) -> DispatchRun:
    """`workers` threads, each on its own outbox_executor connection, for `seconds`."""
    connections = [db.connect(url, application_name=f"outbox bench worker {n}", autocommit=True,
                              role="outbox_executor") for n in range(workers)]
    counts = [0] * workers
    ran_dry = [False] * workers
    errors: list[BaseException] = []
    start = threading.Barrier(workers + 1)
    deadline = [0.0]

    def work(index: int) -> None:
        client = Client(connections[index], prepare=True)
        worker_id = f"bench-worker-{index}"
        try:
            start.wait()
            while time.perf_counter() < deadline[0]:
                claimed = client.claim(worker_id, batch_size)
                if not claimed:
                    ran_dry[index] = True
                    return
                for item in claimed:
                    client.complete(item.outbox_id, item.attempt_no, "DISPATCHED", worker_id=worker_id)
                    counts[index] += 1
        except psycopg.Error as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,), name=f"bench-worker-{n}") for n in range(workers)]
    try:
        for thread in threads:
            thread.start()
        began = time.perf_counter()
        deadline[0] = began + seconds
        start.wait()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
    finally:
        for conn in connections:
            conn.close()
    if errors:
        raise errors[0]
    return DispatchRun(workers=workers, batch_size=batch_size, seconds=elapsed, items=sum(counts), pool=pool,
                       exhausted=any(ran_dry))


def completed(owner_url: str) -> tuple[int, int]:
    """As owner, after a run: the DISPATCHED attempts in the ledger and the items still pending."""
    with db.connection(owner_url, application_name="outbox bench seed", autocommit=True) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM payment_outbox.payment_outbox_attempts "
                           "WHERE state = 'DISPATCHED'), (SELECT count(*) FROM payment_outbox.payment_outbox_pending)"
                           ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
