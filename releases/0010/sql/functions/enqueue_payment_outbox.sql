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
-- Every SQL statement costs an executor start-up, so a new key costs one statement: it
-- registers the key, takes the participant's next sequence id and inserts the item. A repeat
-- costs a second one, the lookup of the key's item; the other paths (allocator busy, new
-- participant, bad input) are rare and may cost more.
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

    -- Creators of one key meet at the register's unique key: a key already registered inserts
    -- nothing and takes no lock (the caller of a repeat, or a concurrent creator once the first
    -- has committed, is answered below); a concurrent creator waits here for the first.
    WITH registered AS (
        INSERT INTO payment_outbox.payment_outbox_idempotency_keys AS k (
            instruction_id, idempotency_key, outbox_id
        )
        VALUES (p_instruction_id, p_idempotency_key, gen_random_uuid())
        ON CONFLICT ON CONSTRAINT payment_outbox_idempotency_keys_pkey DO NOTHING
        RETURNING k.outbox_id
    ),

    -- Only a key this call registered takes the next id, under the allocator row's lock, held
    -- to commit, so ids follow commit order with no gaps and none is ever taken back. SKIP
    -- LOCKED, because a row locked by another enqueue is waited for below.
    allocated AS (
        UPDATE payment_outbox.participant_outbox_sequences AS s
        SET next_sequence_id = s.next_sequence_id + 1
        WHERE
            EXISTS (SELECT FROM registered)
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
            outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
            payload, payload_sha256
        )
        SELECT
            r.outbox_id, p_instruction_id, p_participant_id, a.sequence_id, p_idempotency_key,
            p_rail_type, p_payload, v_payload_sha256
        FROM registered AS r, allocated AS a
        RETURNING p.sequence_id, p.created_at
    )

    SELECT
        r.outbox_id AS registered_outbox_id,
        a.allocator_ctid,
        i.sequence_id,
        i.created_at
    INTO v_call
    FROM (VALUES (1)) AS one (n)
    LEFT JOIN registered AS r ON TRUE
    LEFT JOIN allocated AS a ON TRUE
    LEFT JOIN inserted AS i ON TRUE;

    IF v_call.registered_outbox_id IS NOT NULL AND v_call.allocator_ctid IS NULL THEN
        -- The key is ours, but another enqueue holds the participant's allocator row, or the
        -- participant is new: wait for the row, then take the id and insert the item.
        v_allocator_ctid := payment_outbox._lock_participant_allocator(p_participant_id);
        UPDATE payment_outbox.participant_outbox_sequences AS s
        SET next_sequence_id = s.next_sequence_id + 1
        WHERE s.ctid = v_allocator_ctid
        RETURNING s.next_sequence_id - 1, s.ctid INTO v_call.sequence_id, v_call.allocator_ctid;

        INSERT INTO payment_outbox.payment_outbox_pending AS p (
            outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
            payload, payload_sha256
        )
        VALUES (
            v_call.registered_outbox_id, p_instruction_id, p_participant_id, v_call.sequence_id,
            p_idempotency_key, p_rail_type, p_payload, v_payload_sha256
        )
        RETURNING p.created_at INTO v_call.created_at;
    END IF;

    IF v_call.registered_outbox_id IS NOT NULL THEN
        v_hint := set_config(
            'payment_outbox.allocator_hint', v_call.allocator_ctid::text || ' ' || p_participant_id, true
        );
        outbox_id := v_call.registered_outbox_id;
        sequence_id := v_call.sequence_id;
        created_at := v_call.created_at;
        state := 'PENDING';
        RETURN NEXT;
        RETURN;
    END IF;

    -- The key was registered, by an earlier call or by a concurrent one we waited for; a new
    -- statement sees its item, whether pending or terminal by now.
    SELECT * INTO v_item FROM payment_outbox._find_outbox_item(p_instruction_id, p_idempotency_key);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'idempotency key % of instruction % is registered, but its item is neither pending nor terminal',
            p_idempotency_key, p_instruction_id
            USING ERRCODE = 'XX000',
                  HINT = 'check_invariants() names the item; the key cannot be reused for a new one.';
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
