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
--
-- Lock order: the participant's allocator row, then the key. A call never waits for an
-- allocator while it holds a key it has just registered: otherwise a payment file holding the
-- allocator that enqueues that same key would wait for the call, and the call for the file
-- (a deadlock, 40P01).
DECLARE
    v_payload_text text;
    v_payload_sha256 bytea;
    v_call record;
    v_item record;
    v_same_payload boolean;
BEGIN
    -- One cheap test for the common case; the helpers then name the first bad argument.
    IF num_nulls(
        nullif(btrim(p_instruction_id, payment_outbox._space_characters()), ''),
        nullif(btrim(p_participant_id, payment_outbox._space_characters()), ''),
        nullif(btrim(p_idempotency_key, payment_outbox._space_characters()), ''),
        nullif(btrim(p_rail_type, payment_outbox._space_characters()), '')
    ) > 0
    OR length(p_instruction_id) > payment_outbox._max_length('instruction_id')
    OR length(p_participant_id) > payment_outbox._max_length('participant_id')
    OR length(p_idempotency_key) > payment_outbox._max_length('idempotency_key')
    OR length(p_rail_type) > payment_outbox._max_length('rail_type') THEN
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
    v_payload_text := p_payload::text;
    v_payload_sha256 := payment_outbox._payload_sha256(p_payload);

    -- At most twice: when the allocator row is locked by another enqueue (or the participant is
    -- new), the first pass registers nothing; the call then waits for the row, holding nothing
    -- of its own, and the second pass finds the row locked by itself.
    LOOP
        WITH known AS MATERIALIZED (
            SELECT k.outbox_id
            FROM payment_outbox.payment_outbox_idempotency_keys AS k
            WHERE k.instruction_id = p_instruction_id AND k.idempotency_key = p_idempotency_key
        ),

        -- A key not yet registered locks its participant's allocator row first, held to
        -- commit, so ids follow commit order with no gaps and none is ever taken back. SKIP
        -- LOCKED, because a row locked by another enqueue is waited for below; a repeat takes
        -- no lock at all.
        allocator AS MATERIALIZED (
            SELECT s.ctid AS allocator_ctid
            FROM payment_outbox.participant_outbox_sequences AS s
            WHERE s.participant_id = p_participant_id AND NOT EXISTS (SELECT FROM known)
            FOR NO KEY UPDATE SKIP LOCKED
        ),

        -- Creators of one key meet at the register's unique key: the first inserts; a
        -- concurrent creator of another participant waits here for it and inserts nothing.
        registered AS (
            INSERT INTO payment_outbox.payment_outbox_idempotency_keys AS k (
                instruction_id, idempotency_key, outbox_id
            )
            SELECT p_instruction_id, p_idempotency_key, gen_random_uuid()
            FROM allocator
            ON CONFLICT ON CONSTRAINT payment_outbox_idempotency_keys_pkey DO NOTHING
            RETURNING k.outbox_id
        ),

        -- Only a key this call registered takes the next id.
        allocated AS (
            UPDATE payment_outbox.participant_outbox_sequences AS s
            SET next_sequence_id = s.next_sequence_id + 1
            WHERE
                EXISTS (SELECT FROM registered)
                AND s.participant_id = p_participant_id
                AND s.ctid = (SELECT a.allocator_ctid FROM allocator AS a)
            RETURNING s.next_sequence_id - 1 AS sequence_id
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
            (SELECT kn.outbox_id FROM known AS kn) AS known_outbox_id,
            (SELECT a.allocator_ctid FROM allocator AS a) AS allocator_ctid,
            r.outbox_id AS registered_outbox_id,
            i.sequence_id,
            i.created_at
        INTO v_call
        FROM (VALUES (1)) AS one (n)
        LEFT JOIN registered AS r ON TRUE
        LEFT JOIN inserted AS i ON TRUE;

        EXIT WHEN v_call.known_outbox_id IS NOT NULL OR v_call.allocator_ctid IS NOT NULL;
        -- Another enqueue holds the participant's allocator row, or the participant is new:
        -- wait for the row (creating it for a new participant), then try again.
        PERFORM payment_outbox._lock_participant_allocator(p_participant_id);
    END LOOP;

    IF v_call.registered_outbox_id IS NOT NULL AND v_call.sequence_id IS NULL THEN
        -- The allocator row was locked in a version committed after this statement's snapshot
        -- (its previous holder committed in between), which the statement's UPDATE cannot see. A
        -- new statement can; the lock is already this call's, so nothing here waits.
        UPDATE payment_outbox.participant_outbox_sequences AS s
        SET next_sequence_id = s.next_sequence_id + 1
        WHERE s.ctid = v_call.allocator_ctid
        RETURNING s.next_sequence_id - 1 INTO STRICT v_call.sequence_id;

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
        -- Retired by retention (PO030) or damaged (PO004): never a new item for the key.
        PERFORM payment_outbox._reject_missing_item(p_instruction_id, p_idempotency_key);
    END IF;

    -- The payload is the item's when it is equal as jsonb. Items enqueued before the canonical
    -- hash (tables/0012) hold sha256 of the jsonb text as it was sent, which is also matched;
    -- a pending item still has its payload to compare with.
    -- Two steps: an expression holding a subquery would start an executor on every repeat.
    v_same_payload := v_item.payload_sha256 IN (v_payload_sha256, sha256(convert_to(v_payload_text, 'UTF8')));
    IF NOT v_same_payload THEN
        v_same_payload := EXISTS (
            SELECT FROM payment_outbox.payment_outbox_pending AS p
            WHERE p.outbox_id = v_item.outbox_id AND p.payload = p_payload
        );
    END IF;
    PERFORM payment_outbox._require_same_item(
        p_idempotency_key, v_item.participant_id, v_item.rail_type, v_item.payload_sha256,
        p_participant_id, p_rail_type, CASE WHEN v_same_payload THEN v_item.payload_sha256 ELSE v_payload_sha256 END
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
