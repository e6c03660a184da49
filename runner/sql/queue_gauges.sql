-- The queue gauges and the stuck-dispatching count in one row, as a runtime role reads them.
-- deploy/postgres_exporter/queries.yaml runs the same query, with the threshold written in.
WITH stuck AS (
    SELECT count(*) AS stuck_dispatching
    FROM payment_outbox.list_stuck_dispatching(%(threshold_seconds)s)
)

SELECT
    m.queue_depth,
    m.due_now,
    m.in_flight,
    m.oldest_due_age_seconds,
    s.stuck_dispatching
FROM payment_outbox.payment_outbox_queue_metrics AS m
CROSS JOIN stuck AS s;
