"""Phase 5, proof 3: one terminal attempt per item, enforced by the partial unique index itself.

The writers go past the API on purpose (as the owner, the only role that may INSERT into the
ledger), because this proof is about the index, not about complete_outbox_attempt's checks:

    setup        enqueue X; claim X (attempt 1 DISPATCHING)             through the API
    holder       BEGIN; complete X attempt 1 DISPATCHED (attempt 2)     open, not committed
    w00..wNN     BEGIN; INSERT a DISPATCHED or FAILED attempt 3.. for X  released together
                 -> every writer blocks on the holder (pg_blocking_pids)
    holder       COMMIT
                 -> every writer fails: 23505 on payment_outbox_attempts_outbox_id_terminal_key
    late wave    the same INSERTs again, after the commit: 23505 at once

No writer can see the holder's uncommitted row, so only the unique index stands between them
and a second terminal attempt. The holder is an ordinary completion so that the item ends
consistent (attempts 1, 2 and nothing else): the writers use attempt numbers 3.. so that the
primary key (outbox_id, attempt_no), which PostgreSQL checks first, never fires instead of the
partial index, and the partial index is the only thing that can refuse them.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

from tests.conftest import Database
from tests.helpers.lock_waits import wait_until_blocked
from tests.helpers.phase5 import (
    Instruction,
    check_invariants_empty,
    complete,
    enqueue_and_claim,
    ledger,
    queue_depth,
    storm_size,
)
from tests.helpers.sessions import (
    RaceSession,
    Together,
    session_names,
    sqlstates,
    timings,
)
from tests.helpers.support import ProofRecord, role_connection

pytestmark = pytest.mark.proof

INDEX = "payment_outbox_attempts_outbox_id_terminal_key"
# PostgreSQL names the index that refused the row: on the partitioned ledger (issue 15), INDEX's
# partition on the item's partition. Read from the catalog; INDEX itself on a plain ledger.
REFUSING_INDEX = f"""
SELECT coalesce((
    SELECT i.relname::text
    FROM pg_partition_tree('payment_outbox.{INDEX}') AS t
    INNER JOIN pg_index AS x ON t.relid = x.indexrelid
    INNER JOIN pg_class AS i ON t.relid = i.oid
    WHERE t.isleaf AND x.indrelid = (
        SELECT a.tableoid FROM payment_outbox.payment_outbox_attempts AS a WHERE a.outbox_id = %s LIMIT 1
    )
), '{INDEX}')
"""
ITEM = Instruction("instr-terminal-1", "bank-terminal", "terminal-key-1", "sepa", {"amount": "10.00"})

# A terminal attempt for the item, copying its identity from its first ledger row.
WRITE_TERMINAL_ATTEMPT = """
INSERT INTO payment_outbox.payment_outbox_attempts (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload_sha256, item_created_at, attempt_no, state, claimed_at, completed_at, worker_id
)
SELECT a.outbox_id, a.instruction_id, a.participant_id, a.sequence_id, a.idempotency_key, a.rail_type,
       a.payload_sha256, a.item_created_at, %s, %s, a.claimed_at, clock_timestamp(), %s
FROM payment_outbox.payment_outbox_attempts AS a
WHERE a.outbox_id = %s AND a.attempt_no = 1
"""


def test_one_terminal_attempt_per_item_at_the_index(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    size = storm_size()
    claimed = enqueue_and_claim(url, ITEM, "index-worker", "phase5/terminal-index")
    outbox_id = str(claimed.outbox_id)

    names = session_names("terminal-index/w", size)
    attempt_of = {name: 3 + n for n, name in enumerate(names)}
    state_of = {name: ("DISPATCHED", "FAILED")[n % 2] for n, name in enumerate(names)}

    def write(session: RaceSession) -> int:
        with session.conn.cursor() as cur:
            cur.execute(WRITE_TERMINAL_ATTEMPT, (attempt_of[session.name], state_of[session.name], session.name,
                                                 outbox_id))
            rows = cur.rowcount
        session.conn.commit()
        return rows

    with ExitStack() as stack:
        # Owner connections: they INSERT into the ledger directly, which only the owner may do.
        writers = [RaceSession(name, stack.enter_context(role_connection(url, None, name=name, autocommit=False)))
                   for name in names]
        writer_pids = sorted(w.pid for w in writers)
        holder = stack.enter_context(role_connection(url, "outbox_executor", name="terminal-index/holder",
                                                     autocommit=False))
        monitor = stack.enter_context(role_connection(url, "outbox_readonly", name="terminal-index/monitor"))

        index = writers[0].conn.execute(REFUSING_INDEX, (outbox_id,)).fetchone()[0]
        writers[0].conn.rollback()
        held = complete(holder, outbox_id, claimed.attempt_no, "DISPATCHED", "index-worker")  # transaction stays open
        started = time.perf_counter()
        race = Together(writers, write).start()
        blocked = wait_until_blocked(monitor, writer_pids, holder.info.backend_pid)
        blocked_after = time.perf_counter() - started
        holder.commit()
        outcomes = race.outcomes()
        late = Together(writers, write).start().outcomes()

    proof.observe(storm_size=size, holder_attempt=held, blocked_writers=len({w.pid for w in blocked}),
                  lock_types=sorted({w.locktype for w in blocked}), seconds_until_all_blocked=round(blocked_after, 3),
                  sqlstates=sqlstates(outcomes), constraints=sorted({o.constraint or "" for o in outcomes}),
                  late_sqlstates=sqlstates(late), step_timings=timings(outcomes),
                  sessions=[o.as_json() for o in outcomes])
    proof.check("the holder's completion wrote attempt 2 DISPATCHED", want=(2, "DISPATCHED"), have=held)
    proof.check("every writer waited on the holder's uncommitted terminal attempt",
                want=writer_pids, have=sorted({w.pid for w in blocked}))
    proof.observe(refusing_index=index)
    proof.check(f"every racing writer got 23505 on the partial unique index {INDEX}",
                want={name: ("23505", index) for name in names},
                have={o.session: (o.sqlstate or "ok", o.constraint) for o in outcomes})
    proof.check(f"every late writer got 23505 on the partial unique index {INDEX}",
                want={name: ("23505", index) for name in names},
                have={o.session: (o.sqlstate or "ok", o.constraint) for o in late})
    proof.check("exactly one terminal attempt: the ledger is attempt 1 DISPATCHING, attempt 2 DISPATCHED",
                want=[(1, "DISPATCHING"), (2, "DISPATCHED")], have=[tuple(row) for row in ledger(url, outbox_id)])
    proof.check("the item left pending", want=0, have=queue_depth(url))
    check_invariants_empty(url, proof)
