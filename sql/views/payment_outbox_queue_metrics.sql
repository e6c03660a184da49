-- Queue gauges in one row: depth, due now, in flight, the age of the oldest due item, quarantined
-- items, paused rails.
CREATE OR REPLACE VIEW payment_outbox.payment_outbox_queue_metrics AS
WITH paused AS (
    SELECT r.rail_type FROM payment_outbox.payment_outbox_rails AS r
    WHERE r.paused
)

SELECT
    count(*) AS queue_depth,
    count(*) FILTER (WHERE p.attempt_no IS NULL AND p.next_attempt_at <= now()) AS due_now,
    count(*) FILTER (WHERE p.attempt_no IS NOT NULL) AS in_flight,
    coalesce(
        extract(EPOCH FROM now() - min(p.next_attempt_at) FILTER (
            WHERE p.attempt_no IS NULL AND p.next_attempt_at <= now()
        )),
        0
    ) AS oldest_due_age_seconds,
    -- New columns go last: CREATE OR REPLACE VIEW can only add columns at the end.
    count(*) FILTER (WHERE p.quarantined_at IS NOT NULL) AS quarantined,
    (SELECT count(*) FROM paused) AS paused_rails,
    count(*) FILTER (
        WHERE
        p.attempt_no IS NULL AND p.next_attempt_at <= now()
        AND p.rail_type IN (SELECT paused.rail_type FROM paused)
    ) AS paused_due,
    -- Seconds until the ledger's attached partitions end (NULL before the ledger is partitioned):
    -- from then no item can be created (PO035). Alert well above 0: a month is 2,592,000.
    (
        SELECT extract(EPOCH FROM max(r.range_to) - now())
        FROM payment_outbox.payment_outbox_attempt_partitions AS r
        WHERE r.state = 'attached'
    ) AS ledger_partitions_ahead_seconds,
    -- The fraction of the server's notification queue in use (0 to 1): a listener idle in a
    -- transaction holds it; full, every NOTIFY fails, and with wake-up on so does every enqueue.
    pg_catalog.pg_notification_queue_usage() AS notification_queue_usage
FROM payment_outbox.payment_outbox_pending AS p;

COMMENT ON VIEW payment_outbox.payment_outbox_queue_metrics IS
'Queue gauges: items not yet terminal, items due now, items in flight, seconds the oldest due '
'item has waited (0 when none), items QUARANTINED waiting for an operator (never due, counted in '
'the depth), rails paused now, and the due items of paused rails (counted in due_now too: '
'due_now - paused_due is what workers can claim), seconds until the ledger''s attached partitions '
'end (NULL before partitioning), and the fraction of the server''s notification queue in use. '
'Readable by outbox_readonly.';

REVOKE ALL ON payment_outbox.payment_outbox_queue_metrics FROM PUBLIC;
GRANT SELECT ON payment_outbox.payment_outbox_queue_metrics TO outbox_readonly, outbox_repair;
