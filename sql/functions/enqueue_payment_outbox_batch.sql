-- enqueue_payment_outbox_batch: a payment file in one call, each item as enqueue_payment_outbox would enqueue it.
CREATE OR REPLACE FUNCTION payment_outbox.enqueue_payment_outbox_batch(p_items jsonb)
RETURNS TABLE (item_no integer, outbox_id uuid, sequence_id bigint, created_at timestamptz, state text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
-- Planned for each call's own arrays: a generic plan guesses a few rows per array and would
-- join 50,000 items by nested loops.
SET plan_cache_mode = force_custom_plan
-- A file's plans cost enough to be compiled by JIT, which then takes longer than the work.
SET jit = off
AS $$
#variable_conflict use_column
-- At most five statements whatever the file's size: read and judge the file, lock the
-- allocators, register and insert the new items, look up keys a concurrent call registered
-- meanwhile (only then), return the rows. Locks are taken in one order, every participant's
-- allocator row (by participant_id) before any key (by instruction_id, idempotency_key), as the
-- single call takes its one allocator before its key: files and single calls never deadlock.
DECLARE
    v_first_nos integer[];
    v_known_ids uuid[];
    v_known_sequence_ids bigint[];
    v_known_created_ats timestamptz[];
    v_known_states text[];
    v_fresh_nos integer[];
    v_fresh_instruction_ids text[];
    v_fresh_participant_ids text[];
    v_fresh_keys text[];
    v_fresh_rail_types text[];
    v_fresh_payloads jsonb[];
    v_new_count integer;
    v_repeats integer;
    v_bad_no integer;
    v_new_nos integer[];
    v_new_ids uuid[];
    v_new_sequence_ids bigint[];
    v_new_created_ats timestamptz[];
    v_late_nos integer[];
    v_late_ids uuid[];
    v_late_sequence_ids bigint[];
    v_late_created_ats timestamptz[];
    v_late_states text[];
BEGIN
    PERFORM payment_outbox._require_batch_items('p_items', p_items);

    -- 1. Read the file and judge every item: well formed, the same as the first item with its
    -- key, the same as the item its key already holds. Items are numbered from 1.
    WITH item AS (
        SELECT
            e.n::integer AS item_no,
            e.v AS item,
            e.v ->> 'instruction_id' AS instruction_id,
            e.v ->> 'participant_id' AS participant_id,
            e.v ->> 'idempotency_key' AS idempotency_key,
            e.v ->> 'rail_type' AS rail_type,
            e.v -> 'payload' AS payload
        FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e (v, n)
    ),

    judged AS (
        SELECT
            i.*,
            min(i.item_no) OVER same_key AS first_no,
            f.outbox_id AS known_id,
            f.sequence_id AS known_sequence_id,
            f.created_at AS known_created_at,
            f.state AS known_state,
            NOT coalesce(
                jsonb_typeof(i.item) = 'object'
                AND i.item - ARRAY['instruction_id', 'participant_id', 'idempotency_key', 'rail_type', 'payload'] = '{}'
                AND jsonb_typeof(i.item -> 'instruction_id') = 'string'
                AND jsonb_typeof(i.item -> 'participant_id') = 'string'
                AND jsonb_typeof(i.item -> 'idempotency_key') = 'string'
                AND jsonb_typeof(i.item -> 'rail_type') = 'string'
                AND payment_outbox._valid_argument('instruction_id', i.instruction_id)
                AND payment_outbox._valid_argument('participant_id', i.participant_id)
                AND payment_outbox._valid_argument('idempotency_key', i.idempotency_key)
                AND payment_outbox._valid_argument('rail_type', i.rail_type)
                AND jsonb_typeof(i.payload) = 'object',
                FALSE
            )
            -- A new key must be in Unicode NFC (PO037), as the single call's.
            OR f.outbox_id IS NULL AND pg_catalog.getdatabaseencoding() = 'UTF8'
            AND NOT coalesce(i.instruction_id IS NFC NORMALIZED AND i.idempotency_key IS NFC NORMALIZED, TRUE)
            OR f.outbox_id IS NOT NULL AND (
                f.participant_id <> i.participant_id
                OR f.rail_type <> i.rail_type
                -- Equal as jsonb, as the single call judges it.
                OR NOT s.same_payload
            ) AS refused_alone
        FROM item AS i
        LEFT JOIN LATERAL payment_outbox._find_outbox_item(i.instruction_id, i.idempotency_key) AS f ON TRUE
        CROSS JOIN LATERAL payment_outbox._same_payload(
            f.outbox_id, f.payload_sha256, i.payload, payment_outbox._payload_sha256(i.payload)
        ) AS s
        WINDOW same_key AS (PARTITION BY i.instruction_id, i.idempotency_key)
    )

    SELECT
        array_agg(j.first_no ORDER BY j.item_no),
        array_agg(j.known_id ORDER BY j.item_no),
        array_agg(j.known_sequence_id ORDER BY j.item_no),
        array_agg(j.known_created_at ORDER BY j.item_no),
        array_agg(j.known_state ORDER BY j.item_no),
        array_agg(j.item_no ORDER BY j.item_no) FILTER (WHERE j.known_id IS NULL AND j.first_no = j.item_no),
        array_agg(j.instruction_id ORDER BY j.item_no) FILTER (WHERE j.known_id IS NULL AND j.first_no = j.item_no),
        array_agg(j.participant_id ORDER BY j.item_no) FILTER (WHERE j.known_id IS NULL AND j.first_no = j.item_no),
        array_agg(j.idempotency_key ORDER BY j.item_no) FILTER (WHERE j.known_id IS NULL AND j.first_no = j.item_no),
        array_agg(j.rail_type ORDER BY j.item_no) FILTER (WHERE j.known_id IS NULL AND j.first_no = j.item_no),
        array_agg(j.payload ORDER BY j.item_no) FILTER (WHERE j.known_id IS NULL AND j.first_no = j.item_no),
        min(j.item_no) FILTER (WHERE j.refused_alone),
        count(*) FILTER (WHERE j.first_no <> j.item_no)::integer
    INTO
        v_first_nos,
        v_known_ids, v_known_sequence_ids, v_known_created_ats, v_known_states, v_fresh_nos,
        v_fresh_instruction_ids, v_fresh_participant_ids, v_fresh_keys, v_fresh_rail_types, v_fresh_payloads, v_bad_no,
        v_repeats
    FROM judged AS j;

    IF v_repeats > 0 THEN
        -- A key repeated in the file is one item: every later occurrence must match the first.
        SELECT coalesce(min(r.item_no)::integer, v_bad_no) INTO v_bad_no
        FROM unnest(v_first_nos) WITH ORDINALITY AS r (first_no, item_no)
        WHERE
            r.first_no <> r.item_no
            AND (v_bad_no IS NULL OR r.item_no < v_bad_no)
            AND (
                (p_items -> (r.first_no::integer - 1) ->> 'participant_id') <> (p_items -> (r.item_no::integer - 1) ->> 'participant_id')
                OR (p_items -> (r.first_no::integer - 1) ->> 'rail_type') <> (p_items -> (r.item_no::integer - 1) ->> 'rail_type')
                OR (p_items -> (r.first_no::integer - 1) -> 'payload') <> (p_items -> (r.item_no::integer - 1) -> 'payload')
            );
    END IF;

    IF v_bad_no IS NOT NULL THEN
        PERFORM payment_outbox._reject_enqueue_batch_item(
            v_bad_no, p_items -> (v_bad_no - 1),
            CASE WHEN v_first_nos[v_bad_no] <> v_bad_no THEN p_items -> (v_first_nos[v_bad_no] - 1) END
        );
    END IF;

    v_new_count := coalesce(cardinality(v_fresh_nos), 0);
    IF v_new_count > 0 THEN
        -- 2. Lock the allocator row of every participant with a new key, in participant order,
        -- creating the rows of new participants. ON CONFLICT DO UPDATE locks the rows it
        -- finds even though its WHERE updates none; held to commit, like the single call's.
        INSERT INTO payment_outbox.participant_outbox_sequences AS s (participant_id)
        SELECT DISTINCT u.participant_id
        FROM unnest(v_fresh_participant_ids) AS u (participant_id)
        ORDER BY u.participant_id
        ON CONFLICT ON CONSTRAINT participant_outbox_sequences_pkey
        DO UPDATE SET next_sequence_id = s.next_sequence_id WHERE FALSE;

        -- 3. Register the new keys in key order; a key a concurrent call registered meanwhile
        -- inserts nothing (looked up in 4). Each participant's registered keys take the next
        -- ids, consecutive in file order.
        WITH fresh AS (
            SELECT u.*, gen_random_uuid() AS outbox_id
            FROM unnest(
                v_fresh_nos, v_fresh_instruction_ids, v_fresh_participant_ids, v_fresh_keys, v_fresh_rail_types,
                v_fresh_payloads
            ) AS u (item_no, instruction_id, participant_id, idempotency_key, rail_type, payload)
        ),

        registered AS (
            INSERT INTO payment_outbox.payment_outbox_idempotency_keys AS k (
                instruction_id, idempotency_key, outbox_id
            )
            SELECT f.instruction_id, f.idempotency_key, f.outbox_id
            FROM fresh AS f
            ORDER BY f.instruction_id, f.idempotency_key
            ON CONFLICT ON CONSTRAINT payment_outbox_idempotency_keys_pkey DO NOTHING
            RETURNING k.outbox_id
        ),

        -- Narrow rows: the numbering sorts only what it needs.
        numbered AS (
            SELECT
                f.outbox_id,
                f.participant_id,
                row_number() OVER (PARTITION BY f.participant_id ORDER BY f.item_no) AS n
            FROM fresh AS f
            WHERE f.outbox_id IN (SELECT r.outbox_id FROM registered AS r)
        ),

        allocated AS (
            UPDATE payment_outbox.participant_outbox_sequences AS s
            SET next_sequence_id = s.next_sequence_id + c.n
            FROM (
                SELECT m.participant_id, count(*) AS n FROM numbered AS m GROUP BY m.participant_id
            ) AS c
            WHERE s.participant_id = c.participant_id
            RETURNING s.participant_id, s.next_sequence_id - c.n AS first_sequence_id
        ),

        inserted AS (
            INSERT INTO payment_outbox.payment_outbox_pending AS p (
                outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
                payload, payload_sha256
            )
            SELECT
                f.outbox_id, f.instruction_id, f.participant_id, a.first_sequence_id + m.n - 1,
                f.idempotency_key, f.rail_type, f.payload, payment_outbox._payload_sha256(f.payload)
            FROM numbered AS m
            INNER JOIN allocated AS a ON m.participant_id = a.participant_id
            INNER JOIN fresh AS f ON m.outbox_id = f.outbox_id
            RETURNING p.outbox_id, p.sequence_id, p.created_at
        )

        SELECT
            array_agg(f.item_no),
            array_agg(i.outbox_id),
            array_agg(i.sequence_id),
            array_agg(i.created_at)
        INTO v_new_nos, v_new_ids, v_new_sequence_ids, v_new_created_ats
        FROM inserted AS i
        INNER JOIN fresh AS f ON i.outbox_id = f.outbox_id;
        IF v_new_created_ats IS NOT NULL THEN
            -- Every new item of one call is created at the same now().
            PERFORM payment_outbox._require_ledger_partition(v_new_created_ats[1]);
        END IF;

        IF coalesce(cardinality(v_new_nos), 0) < v_new_count THEN
            -- 4. Keys a concurrent call registered after step 1 read the file: a new statement
            -- sees their items, which must match as a repeat's would.
            WITH late AS (
                SELECT
                    u.item_no,
                    u.participant_id,
                    u.rail_type,
                    f.outbox_id,
                    f.participant_id AS stored_participant_id,
                    f.rail_type AS stored_rail_type,
                    f.sequence_id,
                    f.created_at,
                    f.state,
                    s.same_payload
                FROM unnest(
                    v_fresh_nos, v_fresh_instruction_ids, v_fresh_participant_ids, v_fresh_keys, v_fresh_rail_types,
                    v_fresh_payloads
                ) AS u (item_no, instruction_id, participant_id, idempotency_key, rail_type, payload)
                LEFT JOIN LATERAL payment_outbox._find_outbox_item(u.instruction_id, u.idempotency_key) AS f ON TRUE
                CROSS JOIN LATERAL payment_outbox._same_payload(
                    f.outbox_id, f.payload_sha256, u.payload, payment_outbox._payload_sha256(u.payload)
                ) AS s
                WHERE u.item_no NOT IN (SELECT n.item_no FROM unnest(v_new_nos) AS n (item_no))
            )

            SELECT
                array_agg(l.item_no),
                array_agg(l.outbox_id),
                array_agg(l.sequence_id),
                array_agg(l.created_at),
                array_agg(l.state),
                min(l.item_no) FILTER (
                    WHERE l.outbox_id IS NULL
                    OR l.stored_participant_id <> l.participant_id
                    OR l.stored_rail_type <> l.rail_type
                    OR NOT l.same_payload
                )
            INTO v_late_nos, v_late_ids, v_late_sequence_ids, v_late_created_ats, v_late_states, v_bad_no
            FROM late AS l;

            IF v_bad_no IS NOT NULL THEN
                PERFORM payment_outbox._reject_enqueue_batch_item(v_bad_no, p_items -> (v_bad_no - 1), NULL);
            END IF;
        END IF;
    END IF;

    -- 5. One row per item, in file order; a repeated key answers with its first item's row.
    RETURN QUERY
    SELECT
        u.item_no::integer,
        coalesce(u.known_id, n.outbox_id, l.outbox_id),
        coalesce(u.known_sequence_id, n.sequence_id, l.sequence_id),
        coalesce(u.known_created_at, n.created_at, l.created_at),
        coalesce(u.known_state, CASE WHEN n.outbox_id IS NOT NULL THEN 'PENDING' END, l.state)
    FROM unnest(v_first_nos, v_known_ids, v_known_sequence_ids, v_known_created_ats, v_known_states)
        WITH ORDINALITY AS u (first_no, known_id, known_sequence_id, known_created_at, known_state, item_no)
    LEFT JOIN unnest(v_new_nos, v_new_ids, v_new_sequence_ids, v_new_created_ats)
        AS n (item_no, outbox_id, sequence_id, created_at)
        ON u.known_id IS NULL AND u.first_no = n.item_no
    LEFT JOIN unnest(v_late_nos, v_late_ids, v_late_sequence_ids, v_late_created_ats, v_late_states)
        AS l (item_no, outbox_id, sequence_id, created_at, state)
        ON u.known_id IS NULL AND u.first_no = l.item_no
    ORDER BY u.item_no;
END;
$$;

COMMENT ON FUNCTION payment_outbox.enqueue_payment_outbox_batch(jsonb) IS
'Enqueues a payment file: p_items is a JSON array (at most _max_batch_items() = 50,000) of objects '
'with instruction_id, participant_id, idempotency_key, rail_type and payload. Returns one row per '
'item in file order (item_no from 1), each as enqueue_payment_outbox would answer it: a known key '
'its item, burning no id; new items of a participant consecutive ids in file order; a key repeated '
'in the file one item. Any refused item (PO010, PO011, PO001, PO017) fails the whole call, the '
'message naming the first refused item''s position, and writes nothing.';

REVOKE ALL ON FUNCTION payment_outbox.enqueue_payment_outbox_batch(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.enqueue_payment_outbox_batch(jsonb) TO outbox_ingest;
