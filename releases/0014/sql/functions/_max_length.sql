-- The documented limit, in characters, of each text argument of the API.
CREATE OR REPLACE FUNCTION payment_outbox._max_length(p_argument text)
RETURNS integer
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    -- Ids and keys end up in btree keys (the key register, the ledger's indexes), whose entries
    -- must stay under about 2,700 bytes: two keys of 255 characters of 4 bytes each fit.
    SELECT CASE p_argument
        WHEN 'instruction_id' THEN 255
        WHEN 'participant_id' THEN 255
        WHEN 'idempotency_key' THEN 255
        WHEN 'rail_type' THEN 64
        WHEN 'worker_id' THEN 255
        WHEN 'error_code' THEN 64
        WHEN 'error_message' THEN 4096
        WHEN 'rail_reference' THEN 255
        WHEN 'actor' THEN 255
        WHEN 'reason' THEN 4096
    END
$$;

COMMENT ON FUNCTION payment_outbox._max_length(text) IS
'The limit in characters of a text argument: instruction_id, participant_id, idempotency_key, '
'worker_id, rail_reference, actor 255; rail_type, error_code 64; error_message, reason 4096. Longer '
'is PO015.';

REVOKE ALL ON FUNCTION payment_outbox._max_length(text) FROM PUBLIC;
