-- One batch of a repair cycle: requeues (or fails, at the maximum attempt count) stale claims.
SELECT
    r.outbox_id,
    r.attempt_no,
    r.previous_state,
    r.new_state,
    r.stale_seconds,
    r.worker_id
FROM payment_outbox.repair_zombie_attempts(%(threshold_seconds)s, %(batch_size)s) AS r;
