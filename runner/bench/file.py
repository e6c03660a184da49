"""A payment file: 50,000 items over 10 participants through enqueue_payment_outbox_batch, its
replay (every key known), and a bare INSERT ... SELECT of the same rows, each one statement and
one transaction, timed from the client, the same JSON sent each time."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from runner import db


@dataclass(frozen=True)
class FileRun:
    items: int
    participants: int
    baseline_ms: list[float]
    file_ms: list[float]
    replay_ms: list[float]

    def as_json(self) -> dict[str, object]:
        return {**self.__dict__, "baseline_median_ms": statistics.median(self.baseline_ms),
                "file_median_ms": statistics.median(self.file_ms),
                "replay_median_ms": statistics.median(self.replay_ms)}


def items(count: int, participants: int, run: int) -> str:
    """The file as JSON: item n belongs to participant n mod `participants`, keys new to the run."""
    return json.dumps([
        {"instruction_id": f"file-{run}-i{n // 100}", "participant_id": f"bench-file-p{n % participants}",
         "idempotency_key": f"file-{run}-k{n}", "rail_type": "SEPA",
         "payload": {"amount": n, "currency": "EUR", "creditor": "DE89370400440532013000"}}
        for n in range(count)])


def _timed(url: str, query: str, document: str, want: int | None) -> float:
    with db.connection(url, application_name="outbox bench file", autocommit=True, role="outbox_ingest") as conn:
        began = time.perf_counter()
        cursor = conn.execute(query, {"items": document})
        elapsed = (time.perf_counter() - began) * 1000.0
        if want is not None:
            row = cursor.fetchone()
            if row is None or row[0] != want:
                raise RuntimeError(f"a payment file of {want} items answered {row}")
    return elapsed


def run(owner_url: str, count: int, participants: int, repeats: int, truncate: Callable[[], None]) -> FileRun:
    """`repeats` rounds, each from empty tables: bare INSERT, then the file, then its replay."""
    baseline, first, replay = [], [], []
    for number in range(repeats):
        document = items(count, participants, number)
        truncate()
        baseline.append(_timed(owner_url, db.named_sql("bench_file_baseline"), document, None))
        truncate()
        first.append(_timed(owner_url, db.named_sql("bench_file_enqueue"), document, count))
        replay.append(_timed(owner_url, db.named_sql("bench_file_enqueue"), document, count))
    return FileRun(items=count, participants=participants, baseline_ms=baseline, file_ms=first, replay_ms=replay)
