-- Waits for a participant's allocator row and locks it, creating the row for a new participant.
CREATE OR REPLACE FUNCTION payment_outbox._lock_participant_allocator(p_participant_id text)
RETURNS tid
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
DECLARE
    v_allocator_ctid tid;
BEGIN
    INSERT INTO payment_outbox.participant_outbox_sequences (participant_id)
    VALUES (p_participant_id)
    ON CONFLICT ON CONSTRAINT participant_outbox_sequences_pkey DO NOTHING;

    SELECT s.ctid INTO STRICT v_allocator_ctid
    FROM payment_outbox.participant_outbox_sequences AS s
    WHERE s.participant_id = p_participant_id
    FOR NO KEY UPDATE;
    RETURN v_allocator_ctid;
END;
$$;

COMMENT ON FUNCTION payment_outbox._lock_participant_allocator(text) IS
'Waits for and locks the participant''s allocator row, creating it for a new participant, and '
'returns its ctid. Called by enqueue for a key not yet registered, before it registers the key.';

REVOKE ALL ON FUNCTION payment_outbox._lock_participant_allocator(text) FROM PUBLIC;
