-- In-flight items (claimed, not yet completed) with the age of their claim.
CREATE OR REPLACE VIEW payment_outbox.payment_outbox_in_flight AS
SELECT
    p.outbox_id,
    p.participant_id,
    p.sequence_id,
    p.rail_type,
    p.attempt_no,
    p.worker_id,
    p.claimed_at,
    extract(EPOCH FROM now() - p.claimed_at) AS age_seconds
FROM payment_outbox.payment_outbox_pending AS p
WHERE p.attempt_no IS NOT NULL;

COMMENT ON VIEW payment_outbox.payment_outbox_in_flight IS
'Items claimed by a worker and not yet completed, with claim age in seconds (at transaction start). '
'No payloads: readable by outbox_readonly.';

REVOKE ALL ON payment_outbox.payment_outbox_in_flight FROM PUBLIC;
GRANT SELECT ON payment_outbox.payment_outbox_in_flight TO outbox_readonly, outbox_repair;
