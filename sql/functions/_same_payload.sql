-- The one rule for payload equality: a repeat of a key is the same payment only with an equal payload.
CREATE OR REPLACE FUNCTION payment_outbox._same_payload(
    p_outbox_id uuid,
    p_stored_payload_sha256 bytea,
    p_payload jsonb,
    p_payload_sha256 bytea
)
RETURNS TABLE (same_payload boolean)
LANGUAGE sql
STABLE
-- Neither SECURITY DEFINER nor a SET clause, and a set of one row: so that a caller's `FROM` or
-- `LATERAL` this function is inlined into the caller's plan (a payment file stays one statement,
-- the pending row read by a subplan only where the hashes differ, never a call per item). Every
-- name is schema-qualified, and the only callers are SECURITY DEFINER functions with a pinned path.
AS $$
    -- Equal as jsonb: by the canonical hash or, for items enqueued before it (tables/0012), by the
    -- hash of the jsonb text as it was sent or by the pending item's payload itself.
    SELECT
        p_stored_payload_sha256 IN (p_payload_sha256, sha256(convert_to(p_payload::text, 'UTF8')))
        OR EXISTS (
            SELECT FROM payment_outbox.payment_outbox_pending AS p
            WHERE p.outbox_id = p_outbox_id AND p.payload = p_payload
        )
$$;

COMMENT ON FUNCTION payment_outbox._same_payload(uuid, bytea, jsonb, bytea) IS
'Whether p_payload equals, as jsonb, the payload of item p_outbox_id, whose stored hash is '
'p_stored_payload_sha256; p_payload_sha256 is _payload_sha256(p_payload). Equal canonical hashes '
'decide it; an item written before tables/0012 also matches by the hash of the jsonb text or, while '
'pending, by its payload. A repeat of a key with another payload is PO001, never a second payment. '
'One row; inlined into the caller''s plan.';

REVOKE ALL ON FUNCTION payment_outbox._same_payload(uuid, bytea, jsonb, bytea) FROM PUBLIC;
