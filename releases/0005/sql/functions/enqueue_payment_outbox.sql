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
-- Every SQL statement costs an executor start-up, so a call runs one: it looks the key up,
-- and only when the key is new allocates the participant's next sequence id and inserts the
-- item. The other paths (allocator busy, conflicts, bad input) are rare and may cost more.
DECLARE
    v_payload_sha256 bytea;
    v_hint text;
    v_allocator_ctid tid;
    v_call record;
    v_item record;
BEGIN
    IF num_nulls(
        nullif(btrim(p_instruction_id), ''), nullif(btrim(p_participant_id), ''),
        nullif(btrim(p_idempotency_key), ''), nullif(btrim(p_rail_type), '')
    ) > 0 THEN
        PERFORM payment_outbox._require_argument('instruction_id', p_instruction_id);
        PERFORM payment_outbox._require_argument('participant_id', p_participant_id);
        PERFORM payment_outbox._require_argument('idempotency_key', p_idempotency_key);
        PERFORM payment_outbox._require_argument('rail_type', p_rail_type);
    END IF;
    IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
        RAISE EXCEPTION 'payload must be a JSON object, got %', coalesce(jsonb_typeof(p_payload), 'null')
            USING ERRCODE = 'PO011',
                  HINT = 'Wrap the payment instruction in a JSON object.';
    END IF;
    v_payload_sha256 := sha256(convert_to(p_payload::text, 'UTF8'));

    -- When this transaction already holds the participant's allocator lock (a bulk file calls
    -- this thousands of times in one transaction) the hint gives the row's ctid: found by key,
    -- the row would be reached through every version this transaction has made of it.
    v_hint := current_setting('payment_outbox.allocator_hint', true);
    IF substr(v_hint, strpos(v_hint, ' ') + 1) = p_participant_id THEN
        v_allocator_ctid := split_part(v_hint, ' ', 1)::tid;
    END IF;

    FOR v_round IN 1..2 LOOP
        WITH existing AS (
            SELECT * FROM payment_outbox._find_outbox_item(p_instruction_id, p_idempotency_key)
        ),

        -- A repeated call stops at `existing` and takes no lock. A new key takes the next id
        -- under the allocator row's lock, held to commit, so ids follow commit order with no
        -- gaps; SKIP LOCKED, because a row locked by another enqueue is waited for below.
        allocated AS (
            UPDATE payment_outbox.participant_outbox_sequences AS s
            SET next_sequence_id = s.next_sequence_id + 1
            WHERE
                NOT EXISTS (SELECT FROM existing)
                AND s.participant_id = p_participant_id
                AND s.ctid = coalesce(v_allocator_ctid, (
                    SELECT l.ctid FROM payment_outbox.participant_outbox_sequences AS l
                    WHERE l.participant_id = p_participant_id
                    FOR NO KEY UPDATE SKIP LOCKED
                ))
            RETURNING s.next_sequence_id - 1 AS sequence_id, s.ctid AS allocator_ctid
        ),

        inserted AS (
            INSERT INTO payment_outbox.payment_outbox_pending AS p (
                instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload,
                payload_sha256
            )
            SELECT
                p_instruction_id, p_participant_id, a.sequence_id, p_idempotency_key, p_rail_type,
                p_payload, v_payload_sha256
            FROM allocated AS a
            ON CONFLICT ON CONSTRAINT payment_outbox_pending_instruction_id_idempotency_key_key DO NOTHING
            RETURNING p.outbox_id, p.sequence_id, p.created_at
        )

        SELECT
            e.outbox_id IS NOT NULL AS found,
            a.allocator_ctid,
            coalesce(e.outbox_id, i.outbox_id) AS outbox_id,
            coalesce(e.sequence_id, i.sequence_id) AS sequence_id,
            coalesce(e.created_at, i.created_at) AS created_at,
            coalesce(e.state, 'PENDING') AS state,
            e.participant_id,
            e.rail_type,
            e.payload_sha256
        INTO v_call
        FROM (VALUES (1)) AS one (n)
        LEFT JOIN existing AS e ON TRUE
        LEFT JOIN allocated AS a ON TRUE
        LEFT JOIN inserted AS i ON TRUE;

        EXIT WHEN v_call.found OR v_call.allocator_ctid IS NOT NULL;

        -- Another transaction is creating an item for this participant, or the participant is
        -- new: wait for the lock, unless that transaction created our key meanwhile.
        v_allocator_ctid := payment_outbox._lock_participant_allocator(
            p_participant_id, p_instruction_id, p_idempotency_key
        );
        EXIT WHEN v_allocator_ctid IS NULL;
    END LOOP;

    IF NOT v_call.found AND v_call.allocator_ctid IS NULL AND v_allocator_ctid IS NOT NULL THEN
        RAISE EXCEPTION 'could not allocate a sequence id for participant % with the allocator row locked',
            p_participant_id
            USING ERRCODE = 'XX000';
    END IF;

    IF NOT v_call.found AND v_call.outbox_id IS NOT NULL THEN
        v_hint := set_config(
            'payment_outbox.allocator_hint', v_call.allocator_ctid::text || ' ' || p_participant_id, true
        );
        outbox_id := v_call.outbox_id;
        sequence_id := v_call.sequence_id;
        created_at := v_call.created_at;
        state := v_call.state;
        RETURN NEXT;
        RETURN;
    END IF;

    IF v_call.found THEN
        v_item := v_call;
    ELSE
        IF v_call.allocator_ctid IS NOT NULL THEN
            -- The insert met the key, committed by a transaction we did not wait for on the
            -- allocator (another participant's: a conflict). Give back the id taken above; no
            -- one else can have seen it.
            UPDATE payment_outbox.participant_outbox_sequences AS s
            SET next_sequence_id = s.next_sequence_id - 1
            WHERE s.ctid = v_call.allocator_ctid;
        END IF;
        SELECT * INTO STRICT v_item FROM payment_outbox._find_outbox_item(p_instruction_id, p_idempotency_key);
    END IF;

    PERFORM payment_outbox._require_same_item(
        p_idempotency_key, v_item.participant_id, v_item.rail_type, v_item.payload_sha256,
        p_participant_id, p_rail_type, v_payload_sha256
    );
    outbox_id := v_item.outbox_id;
    sequence_id := v_item.sequence_id;
    created_at := v_item.created_at;
    state := v_item.state;
    RETURN NEXT;
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
