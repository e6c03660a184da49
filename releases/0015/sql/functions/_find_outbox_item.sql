-- Finds the item of an idempotency key through the key register, live (pending) or terminal (ledger).
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
        k.outbox_id,
        coalesce(p.participant_id, a.participant_id) AS participant_id,
        coalesce(p.sequence_id, a.sequence_id) AS sequence_id,
        coalesce(p.rail_type, a.rail_type) AS rail_type,
        coalesce(p.payload_sha256, a.payload_sha256) AS payload_sha256,
        coalesce(p.created_at, a.item_created_at) AS created_at,
        CASE
            WHEN p.outbox_id IS NULL THEN a.state::text
            WHEN p.attempt_no IS NULL THEN 'PENDING'
            ELSE 'DISPATCHING'
        END AS state
    FROM payment_outbox.payment_outbox_idempotency_keys AS k
    LEFT JOIN payment_outbox.payment_outbox_pending AS p ON k.outbox_id = p.outbox_id
    LEFT JOIN payment_outbox.payment_outbox_attempts AS a
        ON k.outbox_id = a.outbox_id AND a.state IN ('DISPATCHED', 'FAILED')
    WHERE
        k.instruction_id = p_instruction_id
        AND k.idempotency_key = p_idempotency_key
        AND (p.outbox_id IS NOT NULL OR a.outbox_id IS NOT NULL)
$$;

COMMENT ON FUNCTION payment_outbox._find_outbox_item(text, text) IS
'The item holding (instruction_id, idempotency_key): its key register row, joined to its pending '
'row or, once it has left pending, its terminal ledger row. state is PENDING, DISPATCHING, '
'DISPATCHED or FAILED. A registered key whose item is neither is not returned.';

REVOKE ALL ON FUNCTION payment_outbox._find_outbox_item(text, text) FROM PUBLIC;
