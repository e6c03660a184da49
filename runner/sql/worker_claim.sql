-- The reference worker's claim: up to batch_size due items, each with its new DISPATCHING attempt.
SELECT
    outbox_id,
    attempt_no,
    instruction_id,
    participant_id,
    sequence_id,
    idempotency_key,
    rail_type,
    payload,
    attempt_count,
    claimed_at
FROM payment_outbox.claim_outbox_batch(%(worker_id)s, %(batch_size)s);
