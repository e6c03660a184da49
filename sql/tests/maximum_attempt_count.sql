-- Proof: at the maximum attempt count a RETRYABLE completion becomes QUARANTINED, never FAILED, and stays pending.
-- (Issue 16: this proof expected FAILED before; retries exhausted is now a person's decision.)
-- The maximum is the operator's to set (rolled back with the proof); a session setting is ignored.
SET LOCAL ROLE outbox_operator;
SELECT payment_outbox_proof.is(
    (SELECT max_attempt_count FROM payment_outbox.set_outbox_settings(p_max_attempt_count => 4)), 4,
    'the operator sets the maximum attempt count to 4'
);
RESET ROLE;
SELECT set_config('payment_outbox.max_attempt_count', '1', TRUE);

SET LOCAL ROLE outbox_ingest;
SELECT * FROM payment_outbox.enqueue_payment_outbox('max-i1', 'max-p', 'max-k1', 'sepa', '{}');

RESET ROLE;
-- Make the retry due at once, so the second claim happens in this transaction.
SELECT set_config('payment_outbox.proof_outbox_id', outbox_id::text, TRUE)
FROM payment_outbox.payment_outbox_pending
WHERE idempotency_key = 'max-k1';

SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.ok(
    (
        SELECT c.state = 'RETRYABLE' AND c.attempt_no = 2
        FROM payment_outbox.claim_outbox_batch('worker-a', 1) AS b,
            payment_outbox.complete_outbox_attempt(b.outbox_id, b.attempt_no, 'RETRYABLE', p_worker_id => 'worker-a') AS c
    ),
    'below the maximum, RETRYABLE stays RETRYABLE'
);

RESET ROLE;
UPDATE payment_outbox.payment_outbox_pending SET next_attempt_at = now()
WHERE outbox_id = current_setting('payment_outbox.proof_outbox_id')::uuid;

SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.ok(
    (
        SELECT c.state = 'QUARANTINED' AND c.attempt_no = 4
        FROM payment_outbox.claim_outbox_batch('worker-a', 1) AS b,
            payment_outbox.complete_outbox_attempt(b.outbox_id, b.attempt_no, 'RETRYABLE', p_worker_id => 'worker-a') AS c
    ),
    'at attempt 4 of 4, RETRYABLE becomes QUARANTINED'
);

RESET ROLE;
SELECT payment_outbox_proof.is(
    (
        SELECT count(*) FROM payment_outbox.payment_outbox_pending
        WHERE
            idempotency_key = 'max-k1' AND attempt_no IS NULL AND attempt_count = 4
            AND next_attempt_at = 'infinity' AND quarantined_at IS NOT NULL
            AND quarantine_reason = 'retries exhausted: RETRYABLE at attempt 4, the maximum attempt count is 4'
    ), 1::bigint,
    'the quarantined item stays pending, unclaimed, never due, with when and why'
);
SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.is(
    (SELECT count(*) FROM payment_outbox.claim_outbox_batch('worker-a', 10)), 0::bigint,
    'a claim does not reach the quarantined item'
);
RESET ROLE;
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(attempt_no || ':' || state, ',' ORDER BY attempt_no)
        FROM payment_outbox.payment_outbox_attempts
        WHERE idempotency_key = 'max-k1'
    ),
    '1:DISPATCHING,2:RETRYABLE,3:DISPATCHING,4:QUARANTINED', 'the ledger of the quarantined item'
);
