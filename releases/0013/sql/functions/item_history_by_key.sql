-- item_history(text, text): the history of the item an (instruction_id, idempotency_key) holds.
-- tables/0013 added the actor and reason of operators' changes: a new result column, which
-- CREATE OR REPLACE cannot add, so the function is dropped and created again in one transaction
-- (its grants below); a caller that names its columns sees no other change.
DROP FUNCTION IF EXISTS payment_outbox.item_history(text, text);

CREATE OR REPLACE FUNCTION payment_outbox.item_history(p_instruction_id text, p_idempotency_key text)
RETURNS TABLE (
    outbox_id uuid,
    instruction_id text,
    idempotency_key text,
    participant_id text,
    sequence_id bigint,
    rail_type text,
    attempt_no integer,
    state text,
    changed_at timestamptz,
    worker_id text,
    claimed_at timestamptz,
    completed_at timestamptz,
    latency_ms numeric,
    error_code text,
    error_message text,
    rail_reference text,
    actor text,
    reason text
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_outbox_id uuid;
BEGIN
    PERFORM payment_outbox._require_argument('p_instruction_id', p_instruction_id);
    PERFORM payment_outbox._require_argument('p_idempotency_key', p_idempotency_key);
    -- The key register holds every key ever enqueued, whatever became of its item.
    SELECT k.outbox_id INTO v_outbox_id
    FROM payment_outbox.payment_outbox_idempotency_keys AS k
    WHERE k.instruction_id = p_instruction_id AND k.idempotency_key = p_idempotency_key;
    IF v_outbox_id IS NULL THEN
        RAISE EXCEPTION 'no outbox item for instruction % and idempotency key %', p_instruction_id, p_idempotency_key
            USING ERRCODE = 'PO003',
                  HINT = 'Check the instruction id and the idempotency key the payment was enqueued with.';
    END IF;
    RETURN QUERY SELECT * FROM payment_outbox.item_history(v_outbox_id);
END;
$$;

COMMENT ON FUNCTION payment_outbox.item_history(text, text) IS
'item_history(uuid) of the item registered to (p_instruction_id, p_idempotency_key). PO010 for a '
'null or blank argument, PO003 when no item holds the key.';

REVOKE ALL ON FUNCTION payment_outbox.item_history(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.item_history(text, text) TO outbox_readonly, outbox_auditor;
