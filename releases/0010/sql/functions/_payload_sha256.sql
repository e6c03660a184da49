-- The sha256 a payload is stored and compared by.
CREATE OR REPLACE FUNCTION payment_outbox._payload_sha256(p_payload jsonb)
RETURNS bytea
LANGUAGE sql
STABLE
PARALLEL SAFE
-- STABLE as convert_to is, so that it is inlined into a set-based caller's plan.
AS $$
    SELECT sha256(convert_to(p_payload::text, 'UTF8'))
$$;

COMMENT ON FUNCTION payment_outbox._payload_sha256(jsonb) IS
'sha256 of the payload''s jsonb text: the payload_sha256 of pending and ledger rows, against which '
'a repeated key''s payload is compared.';

REVOKE ALL ON FUNCTION payment_outbox._payload_sha256(jsonb) FROM PUBLIC;
