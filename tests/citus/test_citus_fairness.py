"""Claims routed bucket by bucket: every due item reachable, no bucket starved by a busy one."""

from __future__ import annotations

import psycopg

from runner.client import Client
from runner.worker import RailOutcome
from runner.worker.bucket import BucketWorker
from tests.citus.conftest import Citus
from tests.helpers.citus_buckets import participants_per_bucket

HEAVY_ITEMS = 300
LIGHT_ITEMS = 3
BATCH = 10


def test_busy_bucket_starves_no_other(citus: Citus, run_id: str) -> None:
    """Bucket 0 holds 300 due items of one participant, every other bucket 3 of one participant,
    all enqueued before any claim, the heavy ones first (so oldest due first). One worker covering
    every bucket claims batches of 10: each light bucket is emptied by its first claim, within the
    first round (one call per bucket), while the heavy bucket needs 30 calls; then everything is
    terminal (every due item was reachable)."""
    with Client.connect(citus.url("executor"), None) as executor:
        buckets = executor.buckets()
    with psycopg.connect(citus.owner_url) as conn:  # reads pg_dist_shard only (bucket_of)
        chosen = participants_per_bucket(conn, f"fair-{run_id}", 1, len(buckets))
    heavy = chosen[0][0]
    light = {chosen[b][0]: b for b in range(1, len(buckets))}
    with Client.connect(citus.url("ingest"), None) as ingest:
        for n in range(HEAVY_ITEMS):
            ingest.enqueue(f"i-{n}", heavy, f"{run_id}/h/{n}", "SEPA", {"n": n})
        for participant in light:
            for n in range(LIGHT_ITEMS):
                ingest.enqueue(f"i-{n}", participant, f"{run_id}/l/{n}", "SEPA", {"n": n})

    claimed_at_call: dict[str, list[int]] = {}
    calls = 0
    with BucketWorker.connected_to(citus.url("executor"), f"fair-{run_id}") as worker:
        while True:
            items = worker.claim(BATCH)
            if not items:
                break
            calls += 1
            for item in items:
                claimed_at_call.setdefault(item.participant_id, []).append(calls)
                worker.complete(item, RailOutcome("DISPATCHED", rail_reference=f"r-{item.idempotency_key}"))

    first_round = len(buckets)
    late = {p: max(claimed_at_call.get(p, [10**9])) for p in light
            if max(claimed_at_call.get(p, [10**9])) > first_round}
    assert not late, f"light buckets waited past the first round of {first_round} calls: {late}"
    assert len(claimed_at_call[heavy]) == HEAVY_ITEMS
    assert max(claimed_at_call[heavy]) >= HEAVY_ITEMS // BATCH, "the heavy bucket was not the busy one"
    assert all(len(claimed_at_call[p]) == LIGHT_ITEMS for p in light)
    with psycopg.connect(citus.owner_url) as conn:
        left = conn.execute("SELECT count(*) FROM payment_outbox.payment_outbox_pending WHERE participant_id = ANY(%s)",
                            ([heavy, *light],)).fetchone()[0]
    assert left == 0
