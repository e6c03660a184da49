-- Bench only, as outbox_ingest: a payment file's rows by a bare INSERT ... SELECT, the file figures' baseline.
INSERT INTO outbox_bench.baseline_insert (instruction_id, participant_id, idempotency_key, payload)
SELECT
    item ->> 'instruction_id' AS instruction_id,
    item ->> 'participant_id' AS participant_id,
    item ->> 'idempotency_key' AS idempotency_key,
    item -> 'payload' AS payload
FROM jsonb_array_elements(%(items)s::jsonb) AS item
