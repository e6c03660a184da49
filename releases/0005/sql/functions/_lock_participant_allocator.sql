-- Waits for a participant's allocator row and locks it, unless the key turns up meanwhile.
CREATE OR REPLACE FUNCTION payment_outbox._lock_participant_allocator(
    p_participant_id text,
    p_instruction_id text,
    p_idempotency_key text
)
RETURNS tid
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
DECLARE
    v_allocator_ctid tid;
BEGIN
    -- The subtransaction of this block is what makes waiting cheap for duplicates: when the
    -- transaction we waited for turns out to have created our key, rolling the block back
    -- releases the lock at once, so a storm of duplicate calls does not queue on the allocator
    -- until each duplicate caller commits.
    BEGIN
        INSERT INTO payment_outbox.participant_outbox_sequences (participant_id)
        VALUES (p_participant_id)
        ON CONFLICT ON CONSTRAINT participant_outbox_sequences_pkey DO NOTHING;

        SELECT s.ctid INTO STRICT v_allocator_ctid
        FROM payment_outbox.participant_outbox_sequences AS s
        WHERE s.participant_id = p_participant_id
        FOR NO KEY UPDATE;

        IF EXISTS (SELECT FROM payment_outbox._find_outbox_item(p_instruction_id, p_idempotency_key)) THEN
            RAISE EXCEPTION USING ERRCODE = 'PO099';
        END IF;
    EXCEPTION WHEN SQLSTATE 'PO099' THEN
        RETURN NULL;
    END;
    RETURN v_allocator_ctid;
END;
$$;

COMMENT ON FUNCTION payment_outbox._lock_participant_allocator(text, text, text) IS
'Waits for and locks the participant''s allocator row (creating it for a new participant) and '
'returns its ctid; returns NULL, holding no lock, when the key''s item exists by then.';

REVOKE ALL ON FUNCTION payment_outbox._lock_participant_allocator(text, text, text) FROM PUBLIC;
