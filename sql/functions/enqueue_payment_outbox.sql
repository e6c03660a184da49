-- enqueue_payment_outbox: idempotent creation of one outbox item per (instruction_id, idempotency_key).
CREATE OR REPLACE FUNCTION payment_outbox.enqueue_payment_outbox(
    p_instruction_id text,
    p_participant_id text,
    p_idempotency_key text,
    p_rail_type text,
    p_payload jsonb
)
RETURNS TABLE (outbox_id uuid, sequence_id bigint, created_at timestamptz, state text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_payload_sha256 bytea;
    v_item record;
    v_hint text;
    v_sequence_id bigint;
    v_allocator_ctid tid;
    v_outbox_id uuid;
    v_created_at timestamptz;
BEGIN
    PERFORM payment_outbox._require_argument('instruction_id', p_instruction_id);
    PERFORM payment_outbox._require_argument('participant_id', p_participant_id);
    PERFORM payment_outbox._require_argument('idempotency_key', p_idempotency_key);
    PERFORM payment_outbox._require_argument('rail_type', p_rail_type);
    IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
        RAISE EXCEPTION 'payload must be a JSON object, got %', coalesce(jsonb_typeof(p_payload), 'null')
            USING ERRCODE = 'PO011',
                  HINT = 'Wrap the payment instruction in a JSON object.';
    END IF;
    v_payload_sha256 := sha256(convert_to(p_payload::text, 'UTF8'));

    -- A repeated call finds its item here and returns it without taking any lock.
    SELECT * INTO v_item FROM payment_outbox._find_outbox_item(p_instruction_id, p_idempotency_key);
    IF FOUND THEN
        PERFORM payment_outbox._require_same_item(
            p_idempotency_key, v_item.participant_id, v_item.rail_type, v_item.payload_sha256,
            p_participant_id, p_rail_type, v_payload_sha256
        );
        RETURN QUERY SELECT v_item.outbox_id, v_item.sequence_id, v_item.created_at, v_item.state;
        RETURN;
    END IF;

    -- Take the next sequence id under the allocator row's lock, held to commit, so ids follow
    -- commit order with no gaps. When this transaction already holds that lock (bulk files
    -- call this thousands of times in one transaction) the row is reached by its ctid: looked
    -- up by key, each update would walk every version this transaction has made of the row.
    v_hint := current_setting('payment_outbox.allocator_hint', true);
    IF v_hint IS NOT NULL AND substr(v_hint, strpos(v_hint, ' ') + 1) = p_participant_id THEN
        UPDATE payment_outbox.participant_outbox_sequences AS s
        SET next_sequence_id = s.next_sequence_id + 1
        WHERE s.ctid = split_part(v_hint, ' ', 1)::tid AND s.participant_id = p_participant_id
        RETURNING s.next_sequence_id - 1, s.ctid INTO v_sequence_id, v_allocator_ctid;
    END IF;
    IF v_sequence_id IS NULL THEN
        UPDATE payment_outbox.participant_outbox_sequences AS s
        SET next_sequence_id = s.next_sequence_id + 1
        WHERE s.participant_id = p_participant_id AND s.ctid = (
            SELECT l.ctid FROM payment_outbox.participant_outbox_sequences AS l
            WHERE l.participant_id = p_participant_id
            FOR NO KEY UPDATE SKIP LOCKED
        )
        RETURNING s.next_sequence_id - 1, s.ctid INTO v_sequence_id, v_allocator_ctid;
    END IF;
    IF v_sequence_id IS NULL THEN
        -- Another transaction is creating an item for this participant (or the participant is
        -- new). Wait for the lock in a subtransaction: if that transaction created our key,
        -- rolling the subtransaction back releases the lock at once, so a storm of duplicate
        -- calls does not queue on the allocator until each caller commits.
        BEGIN
            INSERT INTO payment_outbox.participant_outbox_sequences (participant_id)
            VALUES (p_participant_id)
            ON CONFLICT ON CONSTRAINT participant_outbox_sequences_pkey DO NOTHING;
            UPDATE payment_outbox.participant_outbox_sequences AS s
            SET next_sequence_id = s.next_sequence_id + 1
            WHERE s.participant_id = p_participant_id
            RETURNING s.next_sequence_id - 1, s.ctid INTO v_sequence_id, v_allocator_ctid;
            SELECT * INTO v_item
            FROM payment_outbox._find_outbox_item(p_instruction_id, p_idempotency_key);
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'PO099';
            END IF;
        EXCEPTION WHEN SQLSTATE 'PO099' THEN
            PERFORM payment_outbox._require_same_item(
                p_idempotency_key, v_item.participant_id, v_item.rail_type, v_item.payload_sha256,
                p_participant_id, p_rail_type, v_payload_sha256
            );
            RETURN QUERY SELECT v_item.outbox_id, v_item.sequence_id, v_item.created_at, v_item.state;
            RETURN;
        END;
    END IF;

    INSERT INTO payment_outbox.payment_outbox_pending AS p (
        instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload, payload_sha256
    )
    VALUES (
        p_instruction_id, p_participant_id, v_sequence_id, p_idempotency_key, p_rail_type, p_payload,
        v_payload_sha256
    )
    ON CONFLICT ON CONSTRAINT payment_outbox_pending_instruction_id_idempotency_key_key DO NOTHING
    RETURNING p.outbox_id, p.created_at INTO v_outbox_id, v_created_at;

    IF v_outbox_id IS NULL THEN
        -- The key was committed by a transaction we did not wait for on the allocator: one
        -- for another participant (a conflict), or one that committed after our first look.
        -- Give back the id taken above (no one else can have seen it) and answer as a repeat.
        UPDATE payment_outbox.participant_outbox_sequences AS s
        SET next_sequence_id = s.next_sequence_id - 1
        WHERE s.ctid = v_allocator_ctid
        RETURNING s.ctid INTO v_allocator_ctid;
        SELECT * INTO STRICT v_item
        FROM payment_outbox._find_outbox_item(p_instruction_id, p_idempotency_key);
        PERFORM payment_outbox._require_same_item(
            p_idempotency_key, v_item.participant_id, v_item.rail_type, v_item.payload_sha256,
            p_participant_id, p_rail_type, v_payload_sha256
        );
        PERFORM set_config('payment_outbox.allocator_hint', v_allocator_ctid::text || ' ' || p_participant_id, true);
        RETURN QUERY SELECT v_item.outbox_id, v_item.sequence_id, v_item.created_at, v_item.state;
        RETURN;
    END IF;

    PERFORM set_config('payment_outbox.allocator_hint', v_allocator_ctid::text || ' ' || p_participant_id, true);
    RETURN QUERY SELECT v_outbox_id, v_sequence_id, v_created_at, 'PENDING'::text;
END;
$$;

COMMENT ON FUNCTION payment_outbox.enqueue_payment_outbox(text, text, text, text, jsonb) IS
'Creates the outbox item for (instruction_id, idempotency_key), or returns the one it already '
'holds, with its current state (PENDING, DISPATCHING, DISPATCHED, FAILED). A new item gets the '
'participant''s next sequence id; a repeat burns none. The same key with another participant, '
'rail type or payload raises PO001 and writes nothing.';

REVOKE ALL ON FUNCTION payment_outbox.enqueue_payment_outbox(text, text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.enqueue_payment_outbox(text, text, text, text, jsonb)
TO outbox_ingest;
