-- Bench only, as owner: history of finished items, two ledger rows each (DISPATCHING, DISPATCHED),
-- each key registered as enqueue would register it.
WITH registered AS (
    INSERT INTO payment_outbox.payment_outbox_idempotency_keys (instruction_id, idempotency_key, outbox_id)
    SELECT
        'bench-history-' || item.n AS instruction_id,
        'key-' || item.n AS idempotency_key,
        md5('bench-history-' || item.n)::uuid AS outbox_id
    FROM generate_series(%(first)s::integer, %(last)s::integer) AS item (n)
)

INSERT INTO payment_outbox.payment_outbox_attempts (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload_sha256, item_created_at, attempt_no, state, claimed_at, completed_at, worker_id, latency_ms
)
SELECT
    md5('bench-history-' || item.n)::uuid AS outbox_id,
    'bench-history-' || item.n AS instruction_id,
    'bench-history-' || mod(item.n, 100) AS participant_id,
    item.n / 100 + 1 AS sequence_id,
    'key-' || item.n AS idempotency_key,
    'SEPA' AS rail_type,
    sha256(convert_to('bench-history-' || item.n, 'UTF8')) AS payload_sha256,
    now() - interval '1 day' AS item_created_at,
    step.attempt_no,
    step.state::payment_outbox.outbox_attempt_state AS state,
    now() - interval '1 day' AS claimed_at,
    CASE WHEN step.attempt_no = 2 THEN now() - interval '1 day' END AS completed_at,
    'bench-history-worker' AS worker_id,
    CASE WHEN step.attempt_no = 2 THEN 12.5 END AS latency_ms
FROM generate_series(%(first)s::integer, %(last)s::integer) AS item (n)
CROSS JOIN (VALUES (1, 'DISPATCHING'), (2, 'DISPATCHED')) AS step (attempt_no, state);
