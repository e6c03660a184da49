-- Bench only, as owner: finished payments with keys of realistic length, each key registered as
-- enqueue registers it, two ledger rows each (DISPATCHING, DISPATCHED).
WITH items AS (
    SELECT
        item.n,
        md5('register-size-' || item.n)::uuid AS outbox_id,
        'INSTR-' || lpad(item.n::text, 29, '0') AS instruction_id,
        md5('key-' || item.n)::uuid::text AS idempotency_key,
        'bank-' || mod(item.n, 100) AS participant_id
    FROM generate_series(%(first)s::integer, %(last)s::integer) AS item (n)
),

registered AS (
    INSERT INTO payment_outbox.payment_outbox_idempotency_keys (instruction_id, idempotency_key, outbox_id)
    SELECT
        i.instruction_id,
        i.idempotency_key,
        i.outbox_id
    FROM items AS i
)

INSERT INTO payment_outbox.payment_outbox_attempts (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload_sha256, item_created_at, attempt_no, state, claimed_at, completed_at, worker_id,
    rail_reference, latency_ms
)
SELECT
    i.outbox_id,
    i.instruction_id,
    i.participant_id,
    i.n / 100 + 1 AS sequence_id,
    i.idempotency_key,
    'SEPA' AS rail_type,
    sha256(convert_to(i.instruction_id, 'UTF8')) AS payload_sha256,
    now() - interval '1 day' AS item_created_at,
    step.attempt_no,
    step.state::payment_outbox.outbox_attempt_state AS state,
    now() - interval '1 day' AS claimed_at,
    CASE WHEN step.attempt_no = 2 THEN now() - interval '1 day' END AS completed_at,
    'worker-' || mod(i.n, 16) AS worker_id,
    CASE WHEN step.attempt_no = 2 THEN 'RAIL-' || i.n END AS rail_reference,
    CASE WHEN step.attempt_no = 2 THEN 12.5 END AS latency_ms
FROM items AS i
CROSS JOIN (VALUES (1, 'DISPATCHING'), (2, 'DISPATCHED')) AS step (attempt_no, state);
