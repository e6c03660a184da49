"""Participants chosen by the bucket (shard) they hash into, for the Citus proofs."""

from __future__ import annotations

import itertools

import psycopg

from runner.client import ClaimedItem
from runner.worker import RailOutcome


def bucket_of(conn: psycopg.Connection, participants: list[str]) -> dict[str, int]:
    """Each participant's bucket: the position of its shard in hash order, as outbox_buckets() numbers them."""
    rows = conn.execute(
        "WITH shards AS ("
        "  SELECT shardid, (row_number() OVER (ORDER BY shardminvalue::integer) - 1)::integer AS bucket"
        "  FROM pg_dist_shard WHERE logicalrelid = 'payment_outbox.participant_outbox_sequences'::regclass)"
        " SELECT p, s.bucket FROM unnest(%s::text[]) AS p"
        " JOIN shards AS s ON s.shardid = get_shard_id_for_distribution_column("
        "   'payment_outbox.participant_outbox_sequences', p)",
        (participants,)).fetchall()
    return dict(rows)


def participants_per_bucket(conn: psycopg.Connection, prefix: str, per_bucket: int,
                            buckets: int) -> dict[int, list[str]]:
    """`per_bucket` participant names for every bucket, named prefix-0, prefix-1, ..."""
    chosen: dict[int, list[str]] = {b: [] for b in range(buckets)}
    for start in itertools.count(0, 64):
        names = [f"{prefix}-{n}" for n in range(start, start + 64)]
        for name, bucket in bucket_of(conn, names).items():
            if len(chosen[bucket]) < per_bucket:
                chosen[bucket].append(name)
        if all(len(v) == per_bucket for v in chosen.values()):
            return chosen
        if start > 100_000:
            raise RuntimeError("no participant names found for every bucket")
    raise AssertionError("unreachable")


def dispatched_rail(item: ClaimedItem) -> RailOutcome:
    """A rail that takes every payment: `outbox worker --rail tests.helpers.citus_buckets:dispatched_rail`."""
    return RailOutcome("DISPATCHED", rail_reference=f"ok-{item.idempotency_key}")
