-- _find_participant_item: on Citus, the item of an idempotency key within its participant, live or terminal.
CREATE OR REPLACE FUNCTION payment_outbox._find_participant_item(
    p_participant_id text,
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
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
-- plpgsql, not an inlined SQL function as _find_outbox_item: Citus does not plan a parameterized
-- SQL function over distributed tables. Every table is filtered and joined by participant_id, so
-- Citus routes the whole query to the participant's shard group.
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT
        k.outbox_id,
        k.participant_id,
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
    LEFT JOIN payment_outbox.payment_outbox_pending AS p
        ON k.participant_id = p.participant_id AND k.outbox_id = p.outbox_id
    LEFT JOIN payment_outbox.payment_outbox_attempts AS a
        ON
            k.participant_id = a.participant_id AND k.outbox_id = a.outbox_id
            AND a.state IN ('DISPATCHED', 'FAILED')
    WHERE
        k.participant_id = p_participant_id
        AND k.instruction_id = p_instruction_id
        AND k.idempotency_key = p_idempotency_key
        AND (p.outbox_id IS NOT NULL OR a.outbox_id IS NOT NULL);
END;
$$;

COMMENT ON FUNCTION payment_outbox._find_participant_item(text, text, text) IS
'On Citus: the item holding (instruction_id, idempotency_key) within participant p_participant_id '
'(the key''s scope there), pending or terminal, as _find_outbox_item returns it.';

REVOKE ALL ON FUNCTION payment_outbox._find_participant_item(text, text, text) FROM PUBLIC;
