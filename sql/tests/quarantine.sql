-- Proof: release and fail of a QUARANTINED item, as outbox_operator: audited, fresh budget, refusals write nothing.
SET LOCAL ROLE outbox_operator;
SELECT max_attempt_count FROM payment_outbox.set_outbox_settings(p_max_attempt_count => 2);

SET LOCAL ROLE outbox_ingest;
SELECT e.outbox_id
FROM generate_series(1, 2) AS g,
    payment_outbox.enqueue_payment_outbox('q-i', 'q-p', 'q-k' || g, 'sepa', '{}') AS e;

-- Both items: claimed, RETRYABLE at attempt 2 of 2, so QUARANTINED.
SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(c.state || ':' || c.attempt_no, ',')
        FROM payment_outbox.claim_outbox_batch('worker-q', 10) AS b,
            payment_outbox.complete_outbox_attempt(
                b.outbox_id, b.attempt_no, 'RETRYABLE', 'TIMEOUT', NULL, NULL, 'worker-q'
            ) AS c
    ),
    'QUARANTINED:2,QUARANTINED:2', 'RETRYABLE at attempt 2 of 2 quarantines both items'
);

RESET ROLE;
SELECT set_config('payment_outbox.proof_q1', outbox_id::text, TRUE)
FROM payment_outbox.payment_outbox_pending
WHERE idempotency_key = 'q-k1';
SELECT set_config('payment_outbox.proof_q2', outbox_id::text, TRUE)
FROM payment_outbox.payment_outbox_pending
WHERE idempotency_key = 'q-k2';

SET LOCAL ROLE outbox_operator;
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(l.idempotency_key || ':' || l.attempt_count || ':' || l.quarantine_reason, ',' ORDER BY l.idempotency_key)
        FROM payment_outbox.list_quarantined() AS l
    ),
    'q-k1:2:retries exhausted: RETRYABLE (TIMEOUT) at attempt 2, the maximum attempt count is 2,'
    || 'q-k2:2:retries exhausted: RETRYABLE (TIMEOUT) at attempt 2, the maximum attempt count is 2',
    'list_quarantined shows both, with why'
);

-- Refusals: each raises its SQLSTATE and writes nothing.
CREATE TEMPORARY TABLE before_refusals ON COMMIT DROP AS
SELECT payment_outbox_proof.row_counts() AS counts;
SELECT
    payment_outbox_proof.throws_ok(
        format('SELECT * FROM payment_outbox.%s(%L, %L, %L)', f.name, f.outbox_id, f.reason, f.actor),
        f.sqlstate, format('%s: %s', f.name, f.case_name)
    )
FROM (
    VALUES
    ('release_quarantined', NULL, 'checked', 'alice', 'PO010', 'null id'),
    ('release_quarantined', current_setting('payment_outbox.proof_q1'), NULL, 'alice', 'PO010', 'null reason'),
    ('release_quarantined', current_setting('payment_outbox.proof_q1'), ' ', 'alice', 'PO010', 'blank reason'),
    ('release_quarantined', current_setting('payment_outbox.proof_q1'), 'checked', '', 'PO010', 'empty actor'),
    ('release_quarantined', current_setting('payment_outbox.proof_q1'), repeat('r', 4097), 'alice', 'PO015', 'long reason'),
    ('release_quarantined', current_setting('payment_outbox.proof_q1'), 'checked', repeat('a', 256), 'PO015', 'long actor'),
    ('release_quarantined', gen_random_uuid()::text, 'checked', 'alice', 'PO003', 'unknown item'),
    ('fail_quarantined', NULL, 'checked', 'alice', 'PO010', 'null id'),
    ('fail_quarantined', current_setting('payment_outbox.proof_q1'), 'checked', NULL, 'PO010', 'null actor'),
    ('fail_quarantined', current_setting('payment_outbox.proof_q1'), repeat('r', 4097), 'alice', 'PO015', 'long reason'),
    ('fail_quarantined', gen_random_uuid()::text, 'checked', 'alice', 'PO003', 'unknown item')
) AS f (name, outbox_id, reason, actor, sqlstate, case_name);
SELECT payment_outbox_proof.is(
    payment_outbox_proof.row_counts(), (SELECT b.counts FROM before_refusals AS b), 'the refusals wrote nothing'
);

-- Release: a RELEASED row with actor and reason, due now, same item, the budget counted afresh.
SELECT payment_outbox_proof.is(
    (
        SELECT r.state || ':' || r.attempt_no
        FROM payment_outbox.release_quarantined(
            current_setting('payment_outbox.proof_q1')::uuid, 'rail has no payment for the key', 'alice'
        ) AS r
    ),
    'RELEASED:3', 'release appends RELEASED as attempt 3'
);
SELECT payment_outbox_proof.throws_ok(
    format(
        'SELECT * FROM payment_outbox.release_quarantined(%L, %L, %L)',
        current_setting('payment_outbox.proof_q1'), 'again', 'bob'
    ),
    'PO030', 'a second release of the released item: PO030'
);
SELECT payment_outbox_proof.throws_ok(
    format(
        'SELECT * FROM payment_outbox.fail_quarantined(%L, %L, %L)',
        current_setting('payment_outbox.proof_q1'), 'too late', 'bob'
    ),
    'PO030', 'failing the released item: PO030'
);
-- A maximum of 4: a new item would be quarantined at attempt 4; the released one, whose budget
-- counts from its release (attempt 3), only at attempt 7.
SELECT max_attempt_count FROM payment_outbox.set_outbox_settings(p_max_attempt_count => 4);

SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(b.idempotency_key || ':' || b.attempt_no || ':' || c.state || ':' || c.attempt_no, ',')
        FROM payment_outbox.claim_outbox_batch('worker-r', 10) AS b,
            payment_outbox.complete_outbox_attempt(b.outbox_id, b.attempt_no, 'RETRYABLE', p_worker_id => 'worker-r') AS c
    ),
    'q-k1:4:RETRYABLE:5', 'the released item is claimed at once as attempt 4; attempt 5 RETRYABLE is within its fresh budget'
);

RESET ROLE;
UPDATE payment_outbox.payment_outbox_pending SET next_attempt_at = now()
WHERE outbox_id = current_setting('payment_outbox.proof_q1')::uuid;
SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.is(
    (
        SELECT c.state || ':' || c.attempt_no
        FROM payment_outbox.claim_outbox_batch('worker-r', 10) AS b,
            payment_outbox.complete_outbox_attempt(b.outbox_id, b.attempt_no, 'RETRYABLE', p_worker_id => 'worker-r') AS c
    ),
    'QUARANTINED:7', 'its fresh budget is 4 attempts: attempt 7 (4 after the release) quarantines it again'
);

-- Fail: a terminal FAILED row with actor and reason, the item gone from pending.
SET LOCAL ROLE outbox_operator;
SELECT payment_outbox_proof.is(
    (
        SELECT f.state || ':' || f.attempt_no
        FROM payment_outbox.fail_quarantined(
            current_setting('payment_outbox.proof_q2')::uuid, 'rail rejected the payment', 'carol'
        ) AS f
    ),
    'FAILED:3', 'fail appends FAILED as attempt 3'
);
SELECT payment_outbox_proof.throws_ok(
    format(
        'SELECT * FROM payment_outbox.release_quarantined(%L, %L, %L)',
        current_setting('payment_outbox.proof_q2'), 'changed my mind', 'carol'
    ),
    'PO030', 'releasing the failed item: PO030'
);
SELECT s.max_attempt_count FROM payment_outbox.set_outbox_settings(p_max_attempt_count => 20) AS s;

RESET ROLE;
SELECT payment_outbox_proof.is(
    (
        SELECT
            string_agg(
                a.idempotency_key || '/' || a.attempt_no || ':' || a.state || ':' || coalesce(a.actor, '-') || ':'
                || coalesce(a.reason, '-'),
                ',' ORDER BY a.idempotency_key, a.attempt_no
            )
        FROM payment_outbox.payment_outbox_attempts AS a
        WHERE a.instruction_id = 'q-i' AND a.state::text IN ('RELEASED', 'FAILED')
    ),
    'q-k1/3:RELEASED:alice:rail has no payment for the key,q-k2/3:FAILED:carol:rail rejected the payment',
    'the ledger keeps who released and who failed, and why'
);
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(p.idempotency_key || ':' || p.attempt_base || ':' || p.attempt_count, ',')
        FROM payment_outbox.payment_outbox_pending AS p
        WHERE p.instruction_id = 'q-i'
    ),
    'q-k1:3:7', 'only the released item is pending, its budget counted from its release'
);
SELECT payment_outbox_proof.is(
    (SELECT count(*) FROM payment_outbox.check_invariants()), 0::bigint, 'check_invariants() is empty'
);
