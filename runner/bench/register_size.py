"""Bytes per million payments of the key register and the ledger, measured on a scratch database.

    python -m runner.bench.register_size [--payments N]   (DATABASE_URL, or an embedded cluster)

Keys as a client sends them: an ISO 20022 instruction id of 35 characters and a UUID idempotency
key (36); each payment has the ledger's usual two rows (DISPATCHING, DISPATCHED). Sizes are
pg_total_relation_size (heap, indexes, TOAST; the ledger's summed over its partitions) after VACUUM,
scaled to one million payments.
"""

from __future__ import annotations

import argparse
import json
import os

from runner import db
from runner.clusters import embedded as cluster
from runner.clusters import scratch

BATCH = 100_000


def measure(url: str, payments: int) -> dict[str, float]:
    with db.connection(url, application_name="outbox register size", autocommit=True) as conn:
        for first in range(1, payments + 1, BATCH):
            conn.execute(db.named_sql("bench_seed_register_size"),
                         {"first": first, "last": min(first + BATCH - 1, payments)})
        conn.execute("VACUUM (ANALYZE) payment_outbox.payment_outbox_idempotency_keys, "
                     "payment_outbox.payment_outbox_attempts")
        # Summed over the partition tree: a partitioned ledger (tables/0016) has no storage of its
        # own, so pg_total_relation_size of its parent alone is 0; a plain table has no tree.
        sizes = {table: int(db.first_row(conn.execute(
                     "SELECT coalesce((SELECT sum(pg_total_relation_size(relid))"
                     " FROM pg_partition_tree(%(t)s::regclass)), pg_total_relation_size(%(t)s::regclass))",
                     {"t": f"payment_outbox.{table}"}))[0])
                 for table in ("payment_outbox_idempotency_keys", "payment_outbox_attempts")}
    scale = 1_000_000 / payments
    return {"payments": payments,
            **{f"{table}_bytes": size for table, size in sizes.items()},
            **{f"{table}_mib_per_million": round(size * scale / 2**20, 1) for table, size in sizes.items()},
            **{f"{table}_bytes_per_payment": round(size / payments, 1) for table, size in sizes.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.bench.register_size")
    parser.add_argument("--payments", type=int, default=1_000_000)
    args = parser.parse_args()
    if os.environ.get("DATABASE_URL"):
        with scratch.database(db.database_url(), "outbox_register_size") as url:
            print(json.dumps(measure(url, args.payments), indent=2))
        return 0
    with cluster.EmbeddedCluster() as embedded, scratch.database(embedded.database_url,
                                                                  "outbox_register_size") as url:
        print(json.dumps(measure(url, args.payments), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
