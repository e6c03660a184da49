-- Bench only, as owner: %(count)s items in flight whose worker went silent an hour ago, each key
-- registered as enqueue would register it.
WITH allocator AS (
    INSERT INTO payment_outbox.participant_outbox_sequences (participant_id, next_sequence_id)
    VALUES (%(participant_id)s, %(count)s + 1)
),

zombie AS (
    INSERT INTO payment_outbox.payment_outbox_pending (
        instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload, payload_sha256,
        attempt_count, next_attempt_at, created_at, attempt_no, worker_id, claimed_at
    )
    SELECT
        %(participant_id)s || '-' || n AS instruction_id,
        %(participant_id)s,
        n AS sequence_id,
        'key-' || n AS idempotency_key,
        'SEPA' AS rail_type,
        jsonb_build_object('amount', n) AS payload,
        sha256(convert_to(jsonb_build_object('amount', n)::text, 'UTF8')) AS payload_sha256,
        1 AS attempt_count,
        now() - interval '1 hour' AS next_attempt_at,
        now() - interval '1 hour' AS created_at,
        1 AS attempt_no,
        'bench-silent-worker' AS worker_id,
        now() - interval '1 hour' AS claimed_at
    FROM generate_series(1, %(count)s) AS n
    RETURNING *
),

registered AS (
    INSERT INTO payment_outbox.payment_outbox_idempotency_keys (instruction_id, idempotency_key, outbox_id)
    SELECT
        z.instruction_id,
        z.idempotency_key,
        z.outbox_id
    FROM zombie AS z
)

INSERT INTO payment_outbox.payment_outbox_attempts (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload_sha256, item_created_at, attempt_no, state, claimed_at, worker_id
)
SELECT
    z.outbox_id,
    z.instruction_id,
    z.participant_id,
    z.sequence_id,
    z.idempotency_key,
    z.rail_type,
    z.payload_sha256,
    z.created_at,
    z.attempt_no,
    'DISPATCHING'::payment_outbox.outbox_attempt_state AS state,
    z.claimed_at,
    z.worker_id
FROM zombie AS z;
