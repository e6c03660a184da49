"""Repair against ledger size, and the plans of the hot-path queries (auto_explain).

The ledger is grown to each size with finished items (seeded as owner); 100 items in flight
whose worker went silent are then repaired cycle after cycle: claim them again as
outbox_executor, repair them as outbox_repair, timing the repair call only.
"""

from __future__ import annotations

import re
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg
from psycopg import sql

from runner import db
from runner.client import Client, Role
from runner.clusters import scratch

T = TypeVar("T")
ZOMBIES = 100
REPAIRS_PER_SET = 5
# A sequential scan of the ledger in a hot path makes its cost grow with history.
LEDGER_SCAN = re.compile(r"Seq Scan on payment_outbox_attempts\b")
AUTO_EXPLAIN = {
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
    "auto_explain.log_nested_statements": "on",
    "auto_explain.log_level": "notice",  # sent to this client, not only to the server log
}


class BenchError(RuntimeError):
    """A step of the bench did not do what it must for the timing to mean anything."""


@dataclass(frozen=True)
class RepairSize:
    ledger_rows: int
    cycles_ms: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.cycles_ms)

    def as_json(self) -> dict[str, object]:
        return {"ledger_rows": self.ledger_rows, "cycles_ms": self.cycles_ms, "median_ms": self.median_ms,
                "min_ms": min(self.cycles_ms), "max_ms": max(self.cycles_ms)}


@dataclass
class Plans:
    captured: bool
    reason: str = ""
    ledger_rows: int = 0
    text: dict[str, str] = field(default_factory=dict)  # call -> every plan auto_explain logged for it

    @property
    def ledger_scans(self) -> list[str]:
        return [call for call, plan in self.text.items() if LEDGER_SCAN.search(plan)]

    def as_json(self) -> dict[str, object]:
        return {"captured": self.captured, "reason": self.reason, "ledger_rows": self.ledger_rows,
                "ledger_scans": self.ledger_scans, "plans": self.text}


def _owner(url: str) -> psycopg.Connection:
    return db.connect(url, application_name="outbox bench seed", autocommit=True)


def reset(owner_url: str) -> None:
    with _owner(owner_url) as conn:
        scratch.empty_package_tables(conn)


def grow_ledger(owner_url: str, have_items: int, want_rows: int) -> int:
    """As owner: append finished items until the ledger holds `want_rows` history rows; items now held."""
    want_items = want_rows // 2
    with _owner(owner_url) as conn:
        step = 200_000  # bounded statements, so one INSERT never holds a huge snapshot
        for first in range(have_items + 1, want_items + 1, step):
            conn.execute(db.named_sql("bench_seed_ledger"), {"first": first, "last": min(first + step - 1, want_items)})
        # The seeding's own aftermath (hint bits, visibility map) is not the repair's cost.
        conn.execute("VACUUM (ANALYZE) payment_outbox.payment_outbox_attempts")
    return want_items


def checkpoint(admin_url: str | None) -> None:
    """Writes the seeding's dirty pages out before timing, so that a repair cycle does not pay for
    evicting them (a 1M-row ledger outgrows the default shared_buffers). Needs a superuser (or
    pg_checkpoint): on a DATABASE_URL server without one, the cycles may include such writes."""
    if admin_url is None:
        return
    with db.connection(admin_url, application_name="outbox bench checkpoint", autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def seed_zombies(owner_url: str) -> None:
    """As owner: a fresh set of in-flight items whose worker went silent; the last set leaves pending."""
    with _owner(owner_url) as conn:
        conn.execute("TRUNCATE payment_outbox.payment_outbox_pending")
        conn.execute(db.named_sql("bench_seed_zombies"),
                     {"participant_id": f"bench-zombie-{uuid.uuid4().hex[:8]}", "count": ZOMBIES})
        conn.execute("ANALYZE payment_outbox.payment_outbox_pending")


def ledger_rows(owner_url: str) -> int:
    with _owner(owner_url) as conn:
        row = conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_attempts").fetchone()
        return int(row[0]) if row else 0


def cycles(url: str, owner_url: str, count: int) -> list[float]:
    """`count` timed repairs of 100 zombies, after one untimed warm-up. A set of zombies is repaired,
    claimed again and repaired up to REPAIRS_PER_SET times, then replaced by a fresh set, so no item
    reaches the maximum attempt count (each repair and each claim takes an attempt number)."""
    timings: list[float] = []
    repairs_in_set = REPAIRS_PER_SET
    warmed_up = False  # the first repair on new connections also plans its statements: not timed
    with Client.connect(url, Role.REPAIR, name="outbox bench repair") as repairer, \
            Client.connect(url, Role.EXECUTOR, name="outbox bench claim") as executor:
        repairer.prepare = executor.prepare = True
        while len(timings) < count:
            if repairs_in_set == REPAIRS_PER_SET:
                seed_zombies(owner_url)
                repairs_in_set = 0
            else:
                reclaimed = executor.claim("bench-reclaimer", ZOMBIES)
                _require(len(reclaimed) == ZOMBIES, f"claim took {len(reclaimed)} items, want {ZOMBIES}")
            began = time.perf_counter()
            repaired = repairer.repair(0, ZOMBIES)
            took = (time.perf_counter() - began) * 1000.0
            repairs_in_set += 1
            states = sorted({row.new_state for row in repaired})
            _require(len(repaired) == ZOMBIES and states == ["ZOMBIE_REQUEUE"],
                     f"repair requeued {len(repaired)} items ({states}), want {ZOMBIES}")
            if warmed_up:
                timings.append(took)
            warmed_up = True
    return timings


def capture_plans(admin_url: str | None, ledger_size: int) -> Plans:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement inside enqueue, claim, complete and repair, through
    auto_explain's nested-statement logging. LOAD needs a superuser, which then acts as each runtime role."""
    if admin_url is None:
        return Plans(captured=False, reason="auto_explain needs a superuser login; none with DATABASE_URL")
    plans = Plans(captured=True, ledger_rows=ledger_size)
    notices: list[str] = []
    with db.connection(admin_url, application_name="outbox bench explain", autocommit=True) as conn:
        conn.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        for name, value in AUTO_EXPLAIN.items():
            conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(*name.split(".")), sql.Literal(value)))

        client = Client(conn)

        def record(call: str, role: Role, made: Callable[[], T]) -> T:
            db.set_role(conn, role)
            notices.clear()
            result = made()
            plans.text[call] = "\n\n".join(notices)
            return result

        key = f"explain-{uuid.uuid4()}"
        for call in ("enqueue (new key)", "enqueue (repeated key)"):
            record(call, Role.INGEST, lambda: client.enqueue(key, "participant-explain", key, "SEPA", {"amount": 1}))
        claimed = record(f"claim_outbox_batch (batch {ZOMBIES})", Role.EXECUTOR,
                         lambda: client.claim("bench-reclaimer", ZOMBIES))
        _require(bool(claimed), "claim for the plan took nothing")
        record("complete_outbox_attempt (DISPATCHED)", Role.EXECUTOR,
               lambda: client.complete(claimed[0].outbox_id, claimed[0].attempt_no, "DISPATCHED",
                                       worker_id="bench-reclaimer"))
        record(f"repair_zombie_attempts (batch {ZOMBIES})", Role.REPAIR, lambda: client.repair(0, ZOMBIES))
    return plans


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(f"repair: {message}")


def run(url: str, owner_url: str, admin_url: str | None, sizes: list[int], count: int,
        say: Callable[[str], None]) -> tuple[list[RepairSize], Plans]:
    reset(owner_url)
    results: list[RepairSize] = []
    items = 0
    for size in sizes:
        say(f"repair: growing the ledger to {size:,} attempts")
        items = grow_ledger(owner_url, items, size)
        checkpoint(admin_url)
        rows = ledger_rows(owner_url)  # the zombies' own attempts add up to 3,000 rows during the cycles
        say(f"repair: {count} cycles of {ZOMBIES} zombies at {rows:,} ledger rows")
        results.append(RepairSize(ledger_rows=rows, cycles_ms=cycles(url, owner_url, count)))
    say("repair: capturing the plans of enqueue, claim, complete and repair")
    return results, capture_plans(admin_url, ledger_rows(owner_url))
