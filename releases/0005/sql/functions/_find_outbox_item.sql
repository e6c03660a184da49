-- Finds the item of an idempotency key, live (pending) or terminal (ledger).
CREATE OR REPLACE FUNCTION payment_outbox._find_outbox_item(
    p_instruction_id text,
    p_idempotency_key text
)
RETURNS TABLE (
    outbox_id uuid,
    participant_id text,
    sequence_id bigint,
    rail_type text,
    payload_sha256 bytea,
    created_at timestamptz,
    state text
)
LANGUAGE sql
STABLE
-- Neither SECURITY DEFINER nor a SET clause, so that a caller's `SELECT ... FROM` this function
-- is inlined into the caller's plan and planned once per session with it. Every name is
-- schema-qualified, and the only callers are SECURITY DEFINER functions with a pinned path.
AS $$
    SELECT
        p.outbox_id,
        p.participant_id,
        p.sequence_id,
        p.rail_type,
        p.payload_sha256,
        p.created_at,
        CASE WHEN p.attempt_no IS NULL THEN 'PENDING' ELSE 'DISPATCHING' END AS state
    FROM payment_outbox.payment_outbox_pending AS p
    WHERE p.instruction_id = p_instruction_id AND p.idempotency_key = p_idempotency_key
    UNION ALL
    SELECT
        a.outbox_id,
        a.participant_id,
        a.sequence_id,
        a.rail_type,
        a.payload_sha256,
        a.item_created_at,
        a.state::text AS state
    FROM payment_outbox.payment_outbox_attempts AS a
    WHERE
        a.instruction_id = p_instruction_id
        AND a.idempotency_key = p_idempotency_key
        AND a.state IN ('DISPATCHED', 'FAILED')
    LIMIT 1
$$;

COMMENT ON FUNCTION payment_outbox._find_outbox_item(text, text) IS
'The item holding (instruction_id, idempotency_key): its pending row, or its terminal ledger row '
'once it has left pending. state is PENDING, DISPATCHING, DISPATCHED or FAILED.';

REVOKE ALL ON FUNCTION payment_outbox._find_outbox_item(text, text) FROM PUBLIC;
