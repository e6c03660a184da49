-- The queue gauges, the stuck-dispatching count and the queue's dead rows in one row, as a runtime
-- role reads them. deploy/postgres_exporter/queries.yaml runs the same query, with the threshold
-- written in.
WITH stuck AS (
    SELECT count(*) AS stuck_dispatching
    FROM payment_outbox.list_stuck_dispatching(%(threshold_seconds)s)
),

dead AS (
    SELECT coalesce(sum(r.dead_rows), 0) AS queue_dead_tuples
    FROM payment_outbox.payment_outbox_relation_sizes AS r
    WHERE r.table_name = 'payment_outbox_pending'
)

SELECT
    m.queue_depth,
    m.due_now,
    m.in_flight,
    m.oldest_due_age_seconds,
    s.stuck_dispatching,
    d.queue_dead_tuples,
    m.quarantined,
    m.paused_rails,
    m.paused_due,
    m.ledger_partitions_ahead_seconds,
    m.notification_queue_usage
FROM payment_outbox.payment_outbox_queue_metrics AS m
CROSS JOIN stuck AS s
CROSS JOIN dead AS d;
