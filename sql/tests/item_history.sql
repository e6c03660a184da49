-- Proof: item_history tells an item's life in order, by id or by key, without payload, to readonly and auditor.
SET LOCAL ROLE outbox_ingest;
-- The item's id and creation time travel between roles as settings: a temporary table is its creator's.
SELECT
    set_config('payment_outbox.proof_outbox_id', e.outbox_id::text, TRUE) AS outbox_id,
    set_config('payment_outbox.proof_created_at', e.created_at::text, TRUE) AS created_at
FROM payment_outbox.enqueue_payment_outbox('hist-i1', 'hist-p', 'hist-k1', 'sepa', '{"secret": 1}') AS e;

SET LOCAL ROLE outbox_readonly;
SELECT payment_outbox_proof.ok(
    (
        SELECT
            count(*) = 1
            AND bool_and(
                h.attempt_no = 0 AND h.state = 'ENQUEUED'
                AND h.changed_at = current_setting('payment_outbox.proof_created_at')::timestamptz
            )
        FROM payment_outbox.item_history(current_setting('payment_outbox.proof_outbox_id')::uuid) AS h
    ),
    'a new item has one change: ENQUEUED at its creation, attempt 0'
);

-- claim, RETRYABLE, claim, zombie requeue, claim, DISPATCHED: attempts 1..6.
SET LOCAL ROLE outbox_executor;
SELECT count(*) FROM payment_outbox.claim_outbox_batch('worker-a', 1);
SELECT attempt_no FROM payment_outbox.complete_outbox_attempt(
    current_setting('payment_outbox.proof_outbox_id')::uuid, 1, 'RETRYABLE', 'TIMEOUT', 'rail timed out'
);
RESET ROLE;
-- The retry backoff and the claim age are the owner's to move in a proof, never a runtime role's.
UPDATE payment_outbox.payment_outbox_pending SET next_attempt_at = now() - interval '1 second';
SET LOCAL ROLE outbox_executor;
SELECT count(*) FROM payment_outbox.claim_outbox_batch('worker-b', 1);
RESET ROLE;
-- The whole proof is one transaction, one now(): the claim is made older than it, for repair to see.
UPDATE payment_outbox.payment_outbox_pending SET claimed_at = now() - interval '1 minute';
SET LOCAL ROLE outbox_repair;
SELECT count(*) FROM payment_outbox.repair_zombie_attempts(0, 10);
RESET ROLE;
UPDATE payment_outbox.payment_outbox_pending SET next_attempt_at = now() - interval '1 second';
SET LOCAL ROLE outbox_executor;
SELECT count(*) FROM payment_outbox.claim_outbox_batch('worker-c', 1);
SELECT attempt_no FROM payment_outbox.complete_outbox_attempt(
    current_setting('payment_outbox.proof_outbox_id')::uuid, 5, 'DISPATCHED', p_rail_reference => 'rail-ref-1'
);

SET LOCAL ROLE outbox_readonly;
CREATE TEMPORARY TABLE by_id ON COMMIT DROP AS
SELECT * FROM payment_outbox.item_history(current_setting('payment_outbox.proof_outbox_id')::uuid);
GRANT SELECT ON by_id TO outbox_auditor;
SELECT payment_outbox_proof.is(
    (SELECT string_agg(format('%s %s %s', attempt_no, state, coalesce(worker_id, '-')), ', ' ORDER BY attempt_no) FROM by_id),
    '0 ENQUEUED -, 1 DISPATCHING worker-a, 2 RETRYABLE worker-a, 3 DISPATCHING worker-b, '
    || '4 ZOMBIE_REQUEUE worker-b, 5 DISPATCHING worker-c, 6 DISPATCHED worker-c',
    'every state change in order, with its worker'
);
SELECT payment_outbox_proof.ok(
    (
        SELECT error_code = 'TIMEOUT' AND error_message = 'rail timed out' AND latency_ms >= 0
        FROM by_id
        WHERE attempt_no = 2
    ),
    'a RETRYABLE change carries its error and latency'
);
SELECT payment_outbox_proof.ok(
    (
        SELECT rail_reference = 'rail-ref-1' AND completed_at = changed_at AND latency_ms >= 0
        FROM by_id
        WHERE attempt_no = 6
    ),
    'the DISPATCHED change carries the rail reference, its completion time and latency'
);
SELECT payment_outbox_proof.ok(
    (
        SELECT bool_and(changed_at = claimed_at AND completed_at IS NULL)
        FROM by_id
        WHERE state = 'DISPATCHING'
    ),
    'a DISPATCHING change happened at its claim'
);
SELECT payment_outbox_proof.ok(
    (
        SELECT
            bool_and(
                instruction_id = 'hist-i1' AND idempotency_key = 'hist-k1' AND participant_id = 'hist-p'
                AND sequence_id = 1 AND rail_type = 'sepa'
            )
        FROM by_id
    ),
    'every change names its item'
);

SET LOCAL ROLE outbox_auditor;
SELECT payment_outbox_proof.is(
    (
        SELECT count(*) FROM (
            SELECT * FROM payment_outbox.item_history('hist-i1', 'hist-k1')
            EXCEPT ALL
            SELECT * FROM by_id
        ) AS differ
    ),
    0::bigint, 'by key, the auditor reads the same history as readonly by id'
);
SELECT payment_outbox_proof.is(
    (SELECT count(*) FROM payment_outbox.item_history('hist-i1', 'hist-k1')), 7::bigint,
    'by key: all seven changes'
);

SELECT payment_outbox_proof.ok(
    NOT EXISTS (
        SELECT FROM pg_catalog.pg_proc AS p
        CROSS JOIN LATERAL unnest(p.proargnames) AS n (name)
        WHERE p.proname = 'item_history' AND p.pronamespace = 'payment_outbox'::regnamespace AND n.name = 'payload'
    ),
    'item_history returns no payload'
);

SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.item_history(NULL::uuid)$q$, 'PO010', 'a null id is refused'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.item_history(gen_random_uuid())$q$, 'PO003', 'an unknown id is refused'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.item_history('hist-i1', ' ')$q$, 'PO010', 'a blank key is refused'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.item_history('hist-i1', 'no-such-key')$q$, 'PO003', 'an unknown key is refused'
);

SELECT
    payment_outbox_proof.throws_ok(
        format($q$SET LOCAL ROLE %I; SELECT * FROM payment_outbox.item_history('hist-i1', 'hist-k1')$q$, r.rolname),
        '42501', format('%s cannot read an item''s history', r.rolname)
    )
FROM (VALUES ('outbox_ingest'), ('outbox_executor'), ('outbox_repair')) AS r (rolname);
