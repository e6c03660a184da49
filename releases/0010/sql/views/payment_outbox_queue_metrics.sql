-- Queue gauges in one row: depth, due now, in flight, and the age of the oldest due item.
CREATE OR REPLACE VIEW payment_outbox.payment_outbox_queue_metrics AS
SELECT
    count(*) AS queue_depth,
    count(*) FILTER (WHERE p.attempt_no IS NULL AND p.next_attempt_at <= now()) AS due_now,
    count(*) FILTER (WHERE p.attempt_no IS NOT NULL) AS in_flight,
    coalesce(
        extract(EPOCH FROM now() - min(p.next_attempt_at) FILTER (
            WHERE p.attempt_no IS NULL AND p.next_attempt_at <= now()
        )),
        0
    ) AS oldest_due_age_seconds
FROM payment_outbox.payment_outbox_pending AS p;

COMMENT ON VIEW payment_outbox.payment_outbox_queue_metrics IS
'Queue gauges: items not yet terminal, items due now, items in flight, seconds the oldest due '
'item has waited (0 when none). Readable by outbox_readonly.';

REVOKE ALL ON payment_outbox.payment_outbox_queue_metrics FROM PUBLIC;
GRANT SELECT ON payment_outbox.payment_outbox_queue_metrics TO outbox_readonly, outbox_repair;
