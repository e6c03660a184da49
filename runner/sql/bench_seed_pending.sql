-- Bench only, as owner: %(count)s due items of one participant for the dispatch workers to claim.
WITH allocator AS (
    INSERT INTO payment_outbox.participant_outbox_sequences (participant_id, next_sequence_id)
    VALUES (%(participant_id)s, %(count)s + 1)
)

INSERT INTO payment_outbox.payment_outbox_pending (
    instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload, payload_sha256
)
SELECT
    %(participant_id)s || '-' || item.n AS instruction_id,
    %(participant_id)s,
    item.n AS sequence_id,
    'key-' || item.n AS idempotency_key,
    'SEPA' AS rail_type,
    item.payload,
    sha256(convert_to(item.payload::text, 'UTF8')) AS payload_sha256
FROM (
    SELECT
        n,
        jsonb_build_object('amount', n, 'currency', 'EUR', 'creditor', 'DE89370400440532013000') AS payload
    FROM generate_series(1, %(count)s) AS n
) AS item;
