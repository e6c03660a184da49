-- Every terminal attempt in the ledger, with the key it was enqueued under: what the history checker dequeues.
SELECT
    outbox_id,
    instruction_id,
    idempotency_key,
    attempt_no,
    state::text AS state
FROM payment_outbox.payment_outbox_attempts
WHERE state IN ('DISPATCHED', 'FAILED')
ORDER BY outbox_id, attempt_no;
