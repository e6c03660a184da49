-- enqueue_payment_outbox on Citus: idempotent creation of one outbox item per (participant_id, instruction_id, idempotency_key).
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
-- One path per case, in this order: a bad argument is refused; a known key returns its item; a
-- new key locks its participant's allocator, then registers the key and inserts the item with
-- the next sequence id; a key another call registered while this one waited returns that item.
--
-- Lock order: the participant's allocator row, then the key, as enqueue_payment_outbox_batch
-- takes them (all its allocators, then its keys): a holder of a key already holds its allocator,
-- so a call waiting for a key never holds what the key's holder waits for (no deadlock, 40P01).
-- A repeat takes no lock at all.
DECLARE
    v_payload_sha256 bytea;
    v_same_payload boolean;
    v_item record;
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
    v_payload_sha256 := payment_outbox._payload_sha256(p_payload);

    -- A known key: its item, pending or terminal.
    SELECT * INTO v_item FROM payment_outbox._find_participant_item(p_participant_id, p_instruction_id, p_idempotency_key);

    IF NOT FOUND THEN
        -- A new key: wait for the participant's allocator row and lock it, held to commit, so ids
        -- follow commit order with no gaps; a new participant's row is created first.
        PERFORM
        FROM payment_outbox.participant_outbox_sequences AS s
        WHERE s.participant_id = p_participant_id
        FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            PERFORM payment_outbox._lock_participant_allocator(p_participant_id);
        END IF;

        -- Creators of one key meet at the register's primary key (participant, instruction, key):
        -- the first inserts, the others wait for it there and register nothing. Only a key
        -- registered here takes the next id. Every statement names the participant: Citus routes
        -- it to the participant's shard group, on the node this delegated call runs on.
        WITH registered AS (
            INSERT INTO payment_outbox.payment_outbox_idempotency_keys AS k (
                participant_id, instruction_id, idempotency_key, outbox_id
            )
            VALUES (p_participant_id, p_instruction_id, p_idempotency_key, gen_random_uuid())
            ON CONFLICT ON CONSTRAINT payment_outbox_idempotency_keys_pkey DO NOTHING
            RETURNING k.outbox_id
        ),

        allocated AS (
            UPDATE payment_outbox.participant_outbox_sequences AS s
            SET next_sequence_id = s.next_sequence_id + 1
            WHERE s.participant_id = p_participant_id AND EXISTS (SELECT FROM registered)
            RETURNING s.next_sequence_id - 1 AS sequence_id
        )

        INSERT INTO payment_outbox.payment_outbox_pending AS p (
            outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
            payload, payload_sha256
        )
        SELECT
            r.outbox_id, p_instruction_id, p_participant_id, a.sequence_id, p_idempotency_key,
            p_rail_type, p_payload, v_payload_sha256
        FROM registered AS r, allocated AS a
        RETURNING p.outbox_id, p.sequence_id, p.created_at INTO outbox_id, sequence_id, created_at;

        IF FOUND THEN
            state := 'PENDING';
            RETURN NEXT;
            RETURN;
        END IF;

        -- Another call registered the key while this one waited, and committed: a new statement
        -- sees its item.
        SELECT * INTO v_item FROM payment_outbox._find_participant_item(p_participant_id, p_instruction_id, p_idempotency_key);
        IF NOT FOUND THEN
            -- Retired by retention (PO034) or damaged (PO004): never a new item for the key.
            RAISE EXCEPTION 'idempotency key % of instruction % is registered, but its item is neither pending nor terminal',
                p_idempotency_key, p_instruction_id
                USING ERRCODE = 'PO004',
                      HINT = 'Retired by retention, or the outbox is damaged; the key cannot be reused for a new item.';
        END IF;
    END IF;

    -- A repeat must match the item, its payload equal as jsonb (_same_payload, the rule
    -- enqueue_payment_outbox follows off Citus). Equal canonical hashes prove it, and the common
    -- repeat runs no statement for it; other hashes ask the rule.
    IF v_item.payload_sha256 <> v_payload_sha256 THEN
        SELECT s.same_payload INTO v_same_payload
        FROM payment_outbox._same_payload(v_item.outbox_id, v_item.payload_sha256, p_payload, v_payload_sha256) AS s;
        IF v_same_payload THEN
            v_payload_sha256 := v_item.payload_sha256;
        END IF;
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
'On Citus (delegated to the node holding p_participant_id): creates the outbox item for '
'(participant_id, instruction_id, idempotency_key), or returns the one it already holds, with its '
'current state. A key is scoped to its participant: the same key under another participant is '
'another item. A new item gets the participant''s next sequence id; a repeat burns none. The same '
'key and participant with another rail type or payload raises PO001 and writes nothing.';
