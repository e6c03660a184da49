-- Bench only, as owner: %(count)s due items of one participant for the dispatch workers to claim,
-- each key registered as enqueue would register it.
WITH allocator AS (
    INSERT INTO payment_outbox.participant_outbox_sequences (participant_id, next_sequence_id)
    VALUES (%(participant_id)s, %(count)s + 1)
),

item AS (
    INSERT INTO payment_outbox.payment_outbox_pending (
        instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload, payload_sha256
    )
    SELECT
        %(participant_id)s || '-' || seeded.n AS instruction_id,
        %(participant_id)s,
        seeded.n AS sequence_id,
        'key-' || seeded.n AS idempotency_key,
        'SEPA' AS rail_type,
        seeded.payload,
        sha256(convert_to(seeded.payload::text, 'UTF8')) AS payload_sha256
    FROM (
        SELECT
            n,
            jsonb_build_object('amount', n, 'currency', 'EUR', 'creditor', 'DE89370400440532013000') AS payload
        FROM generate_series(1, %(count)s) AS n
    ) AS seeded
    RETURNING outbox_id, instruction_id, idempotency_key
)

INSERT INTO payment_outbox.payment_outbox_idempotency_keys (instruction_id, idempotency_key, outbox_id)
SELECT
    i.instruction_id,
    i.idempotency_key,
    i.outbox_id
FROM item AS i;
