-- Proof: claim, complete, retry and fencing through outbox_executor, with the ledger numbered 1, 2, 3, ...
SET LOCAL ROLE outbox_ingest;
SELECT * FROM payment_outbox.enqueue_payment_outbox('life-i1', 'life-p', 'life-k1', 'sepa', '{"n": 1}');
SELECT * FROM payment_outbox.enqueue_payment_outbox('life-i2', 'life-p', 'life-k2', 'sepa', '{"n": 2}');

SET LOCAL ROLE outbox_executor;
CREATE TEMPORARY TABLE claim_one ON COMMIT DROP AS
SELECT * FROM payment_outbox.claim_outbox_batch('worker-a', 10);

SELECT payment_outbox_proof.is((SELECT count(*) FROM claim_one), 2::bigint, 'both due items are claimed');
SELECT payment_outbox_proof.ok(
    (SELECT bool_and(attempt_no = 1 AND attempt_count = 1) FROM claim_one), 'a first claim is attempt 1'
);
SELECT payment_outbox_proof.is(
    (SELECT count(*) FROM payment_outbox.claim_outbox_batch('worker-b', 10)), 0::bigint,
    'an item in flight is not claimed again'
);

SELECT payment_outbox_proof.ok(
    (
        SELECT c.attempt_no = 2 AND c.state = 'DISPATCHED'
        FROM payment_outbox.complete_outbox_attempt(
            (
                SELECT outbox_id FROM claim_one
                WHERE idempotency_key = 'life-k1'
            ), 1, 'DISPATCHED', p_rail_reference => 'rail-1', p_worker_id => 'worker-a'
        ) AS c
    ),
    'completing the current attempt appends DISPATCHED as attempt 2'
);
SELECT payment_outbox_proof.throws_ok(
    format(
        $q$SELECT * FROM payment_outbox.complete_outbox_attempt(%L, 1, 'DISPATCHED', p_worker_id => 'worker-a')$q$,
        (
            SELECT outbox_id FROM claim_one
            WHERE idempotency_key = 'life-k1'
        )
    ),
    'PO002', 'a second completion of a terminal item is stale'
);

SELECT payment_outbox_proof.ok(
    (
        SELECT c.attempt_no = 2 AND c.state = 'RETRYABLE'
        FROM payment_outbox.complete_outbox_attempt(
            (
                SELECT outbox_id FROM claim_one
                WHERE idempotency_key = 'life-k2'
            ), 1, 'RETRYABLE', 'TIMEOUT', 'rail timed out', p_worker_id => 'worker-a'
        ) AS c
    ),
    'RETRYABLE is recorded as attempt 2'
);
SELECT payment_outbox_proof.throws_ok(
    format(
        $q$SELECT * FROM payment_outbox.complete_outbox_attempt(%L, 1, 'DISPATCHED', p_worker_id => 'worker-a')$q$,
        (
            SELECT outbox_id FROM claim_one
            WHERE idempotency_key = 'life-k2'
        )
    ),
    'PO002', 'after a retry, the old attempt number is fenced off'
);
SELECT payment_outbox_proof.is(
    (SELECT count(*) FROM payment_outbox.claim_outbox_batch('worker-b', 10)), 0::bigint,
    'a RETRYABLE item is not due before its backoff'
);

SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.claim_outbox_batch('worker-a', 0)$q$, 'PO012', 'batch size 0 is refused'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.claim_outbox_batch('', 5)$q$, 'PO010', 'an empty worker id is refused'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.complete_outbox_attempt(gen_random_uuid(), 1, 'DISPATCHED', p_worker_id => 'worker-a')$q$,
    'PO003', 'completing an unknown item is refused'
);
SELECT payment_outbox_proof.throws_ok(
    format(
        $q$SELECT * FROM payment_outbox.complete_outbox_attempt(%L, 2, 'DISPATCHING', p_worker_id => 'worker-a')$q$,
        (
            SELECT outbox_id FROM claim_one
            WHERE idempotency_key = 'life-k2'
        )
    ),
    'PO014', 'DISPATCHING is not a completion state'
);
SELECT payment_outbox_proof.throws_ok(
    format(
        $q$SELECT * FROM payment_outbox.complete_outbox_attempt(%L, 2, 'ZOMBIE_REQUEUE', p_worker_id => 'worker-a')$q$,
        (
            SELECT outbox_id FROM claim_one
            WHERE idempotency_key = 'life-k2'
        )
    ),
    'PO014', 'ZOMBIE_REQUEUE is not a completion state'
);

SET LOCAL ROLE outbox_ingest;
SELECT payment_outbox_proof.ok(
    (
        SELECT e.state = 'DISPATCHED' AND e.sequence_id = 1
        FROM payment_outbox.enqueue_payment_outbox('life-i1', 'life-p', 'life-k1', 'sepa', '{"n": 1}') AS e
    ),
    'enqueue after the item is terminal returns it with its terminal state'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox('life-i1', 'life-p', 'life-k1', 'sepa', '{"n": 7}')$q$,
    'PO001', 'a conflicting reuse is refused after the item is terminal too'
);

RESET ROLE;
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(attempt_no || ':' || state, ',' ORDER BY attempt_no)
        FROM payment_outbox.payment_outbox_attempts
        WHERE idempotency_key = 'life-k1'
    ),
    '1:DISPATCHING,2:DISPATCHED', 'the ledger of the dispatched item'
);
SELECT payment_outbox_proof.is(
    (
        SELECT rail_reference FROM payment_outbox.payment_outbox_attempts
        WHERE idempotency_key = 'life-k1' AND state = 'DISPATCHED'
    ),
    'rail-1', 'the rail reference is kept'
);
SELECT payment_outbox_proof.ok(
    (
        SELECT attempt_no IS NULL AND attempt_count = 2 AND next_attempt_at >= now() + interval '1 second'
        FROM payment_outbox.payment_outbox_pending
        WHERE idempotency_key = 'life-k2'
    ),
    'the retried item is back in pending with no claim, attempt_count 2 and a backoff'
);
