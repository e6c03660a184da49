"""Phase 5, proof 6: the claim race.

K sessions as outbox_executor claim from one queue in rounds until a round finds it empty:

    round r   c0..c7  BEGIN; claim_outbox_batch(BATCH)      released together
                      (wait until every claim has returned, transactions still open)
                      COMMIT

No claimer may wait on a lock held by another. That is detected, not assumed, three ways:
- every claimer keeps its transaction (and its row locks) open until all claims of the round
  have returned, so a claim that needed another claimer's lock could not finish before that
  lock went away: it would still be waiting when sampled, and would end with 55P03, because
- each claimer runs with lock_timeout, and
- a monitor session (outbox_readonly) samples pg_locks / pg_blocking_pids() for the claimers'
  pids throughout the race.
Relation extension locks (locktype `extend`) are counted and recorded but not held against the
claim: any two sessions that insert into one table (here the ledger's DISPATCHING rows) can meet
for the microseconds it takes to add a page, and that lock is released as soon as the page is
added, never held to commit; it says nothing about how work is handed out. Every other lock a
claimer waits on, row, tuple, transaction or relation, fails the proof.
First, a control shows the monitor sees a real wait between two executor sessions: a
completion blocked on the row lock of another completion of the same attempt that has not
committed (it then gets PO002).

Afterwards: every item was claimed, by exactly one worker, as attempt 1, and the database
(payment_outbox_in_flight) holds each item under the worker that got it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import ExitStack

import psycopg
import pytest

from runner.client import Client, Role
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.lock_waits import WaitSampler, wait_until_blocked
from tests.helpers.phase5 import (
    Instruction,
    check_invariants_empty,
    claim,
    complete,
    enqueue,
)
from tests.helpers.sessions import (
    RaceSession,
    Together,
    open_sessions,
    session_names,
    sqlstates,
    timings,
)
from tests.helpers.support import ProofRecord, role_connection

pytestmark = pytest.mark.proof

CLAIMERS = 8
ITEMS = 400
BATCH = 7  # not a divisor of ITEMS per round, so the last round is ragged
LOCK_TIMEOUT = "2s"  # a claimer waiting this long on a lock fails with 55P03
EXTENSION = "extend"  # pg_locks.locktype of a relation extension lock: held while a page is added
CONTROL = Instruction("instr-claim-control", "bank-claim", "claim-control", "sepa", {"control": True})


def seed_queue(url: str) -> set[str]:
    with Client.connect(url, Role.INGEST, name="phase5/claim-race/seed", autocommit=False) as client:
        ids = {str(row.outbox_id) for row in client.enqueue_many(
            (f"claim-instr-{n}", f"bank-claim-{n % 4}", f"claim-key-{n}", "sepa", {"n": n}) for n in range(ITEMS))}
        client.conn.commit()
    return ids


def control_wait(url: str, monitor: psycopg.Connection, proof: ProofRecord) -> None:
    """A completion waits on the row lock of a completion of the same attempt that has not
    committed, and the monitor sees it."""
    with role_connection(url, "outbox_ingest", name="phase5/claim-race/control-seed") as conn:
        enqueue(conn, CONTROL)
    with open_sessions(url, "outbox_executor", ["claim-race/control-first"], autocommit=False) as (first,), \
            open_sessions(url, "outbox_executor", ["claim-race/control-second"]) as (second,):
        (item,) = claim(first.conn, first.name, 10)
        first.conn.commit()
        complete(first.conn, item.outbox_id, item.attempt_no, "DISPATCHED", first.name)  # its transaction stays open
        # The same worker again on a second connection, as a worker retrying after a lost connection.
        completion = Together([second], lambda s: complete(s.conn, item.outbox_id, item.attempt_no, "DISPATCHED",
                                                            first.name))
        completion.start()
        seen = wait_until_blocked(monitor, [second.pid], first.pid)
        first.conn.commit()
        (outcome,) = completion.outcomes()
    proof.observe(control_waits=[{"locktype": w.locktype, "mode": w.mode} for w in seen])
    proof.check("control: the monitor saw the second completion wait on the first, then get PO002 (stale)",
                want=(True, "PO002"), have=(bool(seen), outcome.sqlstate or "ok"))


class Race:
    """Rounds of claims, each released together and committed only after all have returned."""

    def __init__(self, claimers: int) -> None:
        self.rounds = threading.Barrier(claimers)
        self.lock = threading.Lock()
        self.claimed_in_round: Counter[int] = Counter()
        self.claims: list[tuple[str, int, str, int]] = []  # (worker, round, outbox_id, attempt_no)
        self.errors: list[tuple[str, int, str | None, str]] = []
        self.max_rounds = ITEMS // BATCH + claimers + 2

    def run(self, session: RaceSession) -> int:
        for number in range(self.max_rounds):
            self.rounds.wait()  # release this round's claims together
            try:
                batch = claim(session.conn, session.name, BATCH)
            except psycopg.Error as exc:
                with self.lock:
                    self.errors.append((session.name, number, exc.sqlstate, exc.diag.message_primary or ""))
                session.conn.rollback()
                batch = []
            self.rounds.wait()  # every claim of the round returned; transactions still open
            session.conn.commit()
            with self.lock:
                self.claims.extend((session.name, number, str(item.outbox_id), item.attempt_no) for item in batch)
                self.claimed_in_round[number] += len(batch)
            self.rounds.wait()  # every count is in: all claimers take the same decision
            if self.claimed_in_round[number] == 0 or any(error[1] == number for error in self.errors):
                return number + 1  # drained, or a claim waited: the proof has what it needs
        return self.max_rounds


def test_claim_race(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    with ExitStack() as stack:
        monitor = stack.enter_context(role_connection(url, "outbox_readonly", name="claim-race/monitor"))
        control_wait(url, monitor, proof)
        seeded = seed_queue(url)
        claimers = stack.enter_context(open_sessions(url, "outbox_executor", session_names("claim-race/c", CLAIMERS),
                                                     autocommit=False))
        for session in claimers:
            session.conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
            session.conn.commit()
        pids = {s.pid: s.name for s in claimers}
        race = Race(CLAIMERS)
        started = time.perf_counter()
        with WaitSampler(monitor, pids) as sampler:
            outcomes = Together(claimers, race.run).start().outcomes()
        elapsed = time.perf_counter() - started

    queue = api.queue(url)
    in_flight = {str(outbox_id): (worker_id, attempt_no)
                 for outbox_id, attempt_no, worker_id in queue["in_flight_items"]}
    due_now = queue["due_now"]

    distinct_waits = sorted({w for w in sampler.waits if any(b in pids for b in w.blockers)}, key=repr)
    waits_on_claimers = [{"waiter": pids[w.pid], "locktype": w.locktype, "mode": w.mode,
                          "blockers": sorted(pids.get(b, str(b)) for b in w.blockers)} for w in distinct_waits]
    page_extension_waits = [w for w in waits_on_claimers if w["locktype"] == EXTENSION]
    waits_on_claimers = [w for w in waits_on_claimers if w["locktype"] != EXTENSION]
    per_attempt = Counter((outbox_id, attempt_no) for _, _, outbox_id, attempt_no in race.claims)
    per_item = Counter(outbox_id for _, _, outbox_id, _ in race.claims)
    proof.observe(claimers=CLAIMERS, items=ITEMS, batch=BATCH, lock_timeout=LOCK_TIMEOUT, seconds=round(elapsed, 3),
                  rounds=[o.value for o in outcomes][:1], claims=len(race.claims),
                  claims_per_worker=dict(Counter(w for w, _, _, _ in race.claims)),
                  claims_per_round=dict(sorted(race.claimed_in_round.items())), monitor_samples=sampler.samples,
                  waits_sampled=len(sampler.waits), waits_on_claimers=waits_on_claimers[:20],
                  page_extension_waits=len(page_extension_waits),
                  claim_errors=race.errors[:20], session_sqlstates=sqlstates(outcomes), step_timings=timings(outcomes))

    proof.check("the monitor sampled throughout the race", want=True, have=sampler.samples > 0)
    proof.check("no claimer waited on a lock held by another claimer (pg_locks / pg_blocking_pids)",
                want=[], have=waits_on_claimers[:20])
    proof.check("no claim failed (55P03 would mean it waited past lock_timeout)", want=[], have=race.errors[:20])
    proof.check("every claimer ran to the end", want={"ok": CLAIMERS}, have=sqlstates(outcomes))
    proof.check("no attempt was handed to two workers", want=[],
                have=[key for key, n in per_attempt.items() if n > 1][:20])
    proof.check("no item was handed out twice", want=[], have=[key for key, n in per_item.items() if n > 1][:20])
    proof.check("every item was claimed", want=sorted(seeded), have=sorted(per_item))
    proof.check("every claim was attempt 1", want={1}, have={attempt_no for _, _, _, attempt_no in race.claims})
    proof.check("the database holds each item in flight under the worker that got it, as that attempt",
                want={outbox_id: (worker, attempt_no) for worker, _, outbox_id, attempt_no in race.claims},
                have=in_flight)
    proof.check("nothing is left due", want=0, have=due_now)
    check_invariants_empty(url, proof)
