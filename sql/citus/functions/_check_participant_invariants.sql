-- _check_participant_invariants: on Citus, check_invariants() for one participant's rows, as one query on its shard group.
CREATE OR REPLACE FUNCTION payment_outbox._check_participant_invariants(p_participant_id text)
RETURNS TABLE (invariant text, outbox_id uuid, participant_id text, detail text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
SET enable_nestloop = off
SET jit = off
AS $$
-- The statement of check_invariants() (functions/check_invariants.sql), with every read of the
-- queue, the ledger, the key register, the allocators and the retired sequences narrowed to
-- one participant: Citus routes the whole statement to the participant's shard group, where it
-- runs as on one server. An idempotency key is scoped to its participant on Citus, so checking
-- keys participant by participant checks them all.
#variable_conflict use_column
DECLARE
    -- Read before the statement: Citus plans no SQL function over a distributed or reference table
    -- inside a parameterized statement (this one's parameter is the participant).
    v_retired jsonb := (
        SELECT coalesce(jsonb_agg(to_jsonb(r)), '[]') FROM payment_outbox._retired_attempt_ranges() AS r
    );
BEGIN
    RETURN QUERY
    WITH items AS (
        SELECT
            p.outbox_id,
            p.participant_id,
            p.sequence_id,
            p.instruction_id,
            p.idempotency_key
        FROM (SELECT * FROM payment_outbox.payment_outbox_pending WHERE participant_id = p_participant_id) AS p
        UNION
        SELECT
            a.outbox_id,
            a.participant_id,
            a.sequence_id,
            a.instruction_id,
            a.idempotency_key
        FROM (SELECT * FROM payment_outbox.payment_outbox_attempts WHERE participant_id = p_participant_id) AS a
    ),

    history AS (
        SELECT
            a.outbox_id,
            min(a.attempt_no) AS first_attempt_no,
            max(a.attempt_no) AS last_attempt_no,
            count(*) AS attempts,
            count(*) FILTER (WHERE a.state IN ('DISPATCHED', 'FAILED')) AS terminal_attempts,
            max(a.attempt_no) FILTER (WHERE a.state IN ('DISPATCHED', 'FAILED')) AS terminal_attempt_no,
            (array_agg(a.state ORDER BY a.attempt_no DESC))[1] AS last_state,
            -- As text: this body is parsed when the function is created, in the migration that
            -- adds RELEASED to the enum, which cannot use the new value before it commits.
            max(a.attempt_no) FILTER (WHERE a.state::text = 'RELEASED') AS last_release_no
        FROM (SELECT * FROM payment_outbox.payment_outbox_attempts WHERE participant_id = p_participant_id) AS a
        GROUP BY a.outbox_id
    ),

    -- Items whose partition retention retired still held their sequence ids: counted from the
    -- record retention made of them, so a retired month is neither a gap nor a lower maximum.
    per_participant AS (
        SELECT
            held.participant_id,
            sum(held.distinct_ids) AS distinct_ids,
            max(held.max_id) AS max_id
        FROM (
            SELECT
                i.participant_id,
                count(DISTINCT i.sequence_id) AS distinct_ids,
                max(i.sequence_id) AS max_id
            FROM items AS i
            GROUP BY i.participant_id
            UNION ALL
            SELECT
                s.participant_id,
                s.items AS distinct_ids,
                s.max_sequence_id AS max_id
            FROM (SELECT * FROM payment_outbox.payment_outbox_retired_sequences WHERE participant_id = p_participant_id) AS s
            INNER JOIN jsonb_to_recordset(v_retired) AS r (partition_name text, range_from timestamptz, range_to timestamptz, retired_at timestamptz) ON s.partition_name = r.partition_name
        ) AS held
        GROUP BY held.participant_id
    )

    SELECT
        'sequence_duplicate' AS invariant,
        NULL::uuid AS outbox_id,
        i.participant_id,
        format('sequence id %s is held by %s items', i.sequence_id, count(DISTINCT i.outbox_id)) AS detail
    FROM items AS i
    GROUP BY i.participant_id, i.sequence_id
    HAVING count(DISTINCT i.outbox_id) > 1
    UNION ALL
    SELECT
        'sequence_gap' AS invariant,
        NULL::uuid AS outbox_id,
        pp.participant_id,
        format('ids run up to %s but only %s distinct ids exist', pp.max_id, pp.distinct_ids) AS detail
    FROM per_participant AS pp
    WHERE pp.max_id <> pp.distinct_ids
    UNION ALL
    SELECT
        'allocator_out_of_step' AS invariant,
        NULL::uuid AS outbox_id,
        s.participant_id,
        format('next_sequence_id is %s, highest id held is %s', s.next_sequence_id, coalesce(pp.max_id, 0)) AS detail
    FROM (SELECT * FROM payment_outbox.participant_outbox_sequences WHERE participant_id = p_participant_id) AS s
    LEFT JOIN per_participant AS pp ON s.participant_id = pp.participant_id
    WHERE s.next_sequence_id <> coalesce(pp.max_id, 0) + 1
    UNION ALL
    SELECT
        'allocator_missing' AS invariant,
        NULL::uuid AS outbox_id,
        pp.participant_id,
        format('items up to sequence id %s exist but the participant has no allocator row', pp.max_id) AS detail
    FROM per_participant AS pp
    WHERE
        NOT EXISTS (
            SELECT FROM (SELECT * FROM payment_outbox.participant_outbox_sequences WHERE participant_id = p_participant_id) AS s
            WHERE s.participant_id = pp.participant_id
        )
    UNION ALL
    SELECT
        'key_held_by_two_items' AS invariant,
        NULL::uuid AS outbox_id,
        NULL AS participant_id,
        format(
            'idempotency key %s of instruction %s is held by %s items', i.idempotency_key, i.instruction_id,
            count(DISTINCT i.outbox_id)
        ) AS detail
    FROM items AS i
    GROUP BY i.instruction_id, i.idempotency_key
    HAVING count(DISTINCT i.outbox_id) > 1
    UNION ALL
    SELECT
        'key_not_registered_to_item' AS invariant,
        i.outbox_id,
        i.participant_id,
        format(
            'idempotency key %s of instruction %s is registered to %s', i.idempotency_key, i.instruction_id,
            coalesce(k.outbox_id::text, 'no item')
        ) AS detail
    FROM items AS i
    LEFT JOIN (SELECT * FROM payment_outbox.payment_outbox_idempotency_keys WHERE participant_id = p_participant_id) AS k
        ON i.instruction_id = k.instruction_id AND i.idempotency_key = k.idempotency_key
    WHERE k.outbox_id IS DISTINCT FROM i.outbox_id
    UNION ALL
    SELECT
        'multiple_terminal_attempts' AS invariant,
        h.outbox_id,
        NULL AS participant_id,
        format('%s terminal attempts', h.terminal_attempts) AS detail
    FROM history AS h
    WHERE h.terminal_attempts > 1
    UNION ALL
    SELECT
        'attempt_numbers_not_increasing' AS invariant,
        h.outbox_id,
        NULL AS participant_id,
        format('%s attempts numbered %s to %s', h.attempts, h.first_attempt_no, h.last_attempt_no) AS detail
    FROM history AS h
    WHERE h.first_attempt_no <> 1 OR h.last_attempt_no <> h.attempts
    UNION ALL
    SELECT
        'attempt_after_terminal' AS invariant,
        h.outbox_id,
        NULL AS participant_id,
        format('terminal attempt %s is followed by attempt %s', h.terminal_attempt_no, h.last_attempt_no) AS detail
    FROM history AS h
    WHERE h.terminal_attempt_no < h.last_attempt_no
    UNION ALL
    SELECT
        'in_flight_without_dispatching_attempt' AS invariant,
        p.outbox_id,
        p.participant_id,
        format(
            'claimed as attempt %s, latest ledger row is %s %s',
            p.attempt_no, coalesce(h.last_attempt_no::text, 'none'), coalesce(h.last_state::text, '')
        ) AS detail
    FROM (SELECT * FROM payment_outbox.payment_outbox_pending WHERE participant_id = p_participant_id) AS p
    LEFT JOIN history AS h ON p.outbox_id = h.outbox_id
    WHERE
        p.attempt_no IS NOT NULL
        AND (h.last_attempt_no IS DISTINCT FROM p.attempt_no OR h.last_state IS DISTINCT FROM 'DISPATCHING')
    UNION ALL
    SELECT
        'dispatching_attempt_without_claim' AS invariant,
        p.outbox_id,
        p.participant_id,
        format('latest ledger row %s is DISPATCHING but the pending row holds no claim', h.last_attempt_no) AS detail
    FROM (SELECT * FROM payment_outbox.payment_outbox_pending WHERE participant_id = p_participant_id) AS p
    INNER JOIN history AS h ON p.outbox_id = h.outbox_id
    WHERE p.attempt_no IS NULL AND h.last_state = 'DISPATCHING'
    UNION ALL
    SELECT
        'terminal_item_in_pending' AS invariant,
        p.outbox_id,
        p.participant_id,
        format('terminal attempt %s exists, the item is still pending', h.terminal_attempt_no) AS detail
    FROM (SELECT * FROM payment_outbox.payment_outbox_pending WHERE participant_id = p_participant_id) AS p
    INNER JOIN history AS h ON p.outbox_id = h.outbox_id
    WHERE h.terminal_attempts > 0
    UNION ALL
    SELECT
        'quarantined_without_quarantined_attempt' AS invariant,
        p.outbox_id,
        p.participant_id,
        format(
            'quarantined at attempt count %s, latest ledger row is %s %s',
            p.attempt_count, coalesce(h.last_attempt_no::text, 'none'), coalesce(h.last_state::text, '')
        ) AS detail
    FROM (SELECT * FROM payment_outbox.payment_outbox_pending WHERE participant_id = p_participant_id) AS p
    LEFT JOIN history AS h ON p.outbox_id = h.outbox_id
    WHERE
        p.quarantined_at IS NOT NULL
        AND (h.last_attempt_no IS DISTINCT FROM p.attempt_count OR h.last_state::text IS DISTINCT FROM 'QUARANTINED')
    UNION ALL
    SELECT
        'quarantined_attempt_not_held' AS invariant,
        h.outbox_id,
        p.participant_id,
        format(
            'latest ledger row %s is QUARANTINED but the item is %s', h.last_attempt_no,
            CASE WHEN p.outbox_id IS NULL THEN 'not pending' ELSE 'pending and not quarantined' END
        ) AS detail
    FROM history AS h
    LEFT JOIN (SELECT * FROM payment_outbox.payment_outbox_pending WHERE participant_id = p_participant_id) AS p ON h.outbox_id = p.outbox_id
    WHERE h.last_state::text = 'QUARANTINED' AND p.quarantined_at IS NULL
    UNION ALL
    SELECT
        'attempt_base_not_latest_release' AS invariant,
        p.outbox_id,
        p.participant_id,
        format(
            'attempt budget counted from %s, latest RELEASED row is %s',
            p.attempt_base, coalesce(h.last_release_no::text, 'none')
        ) AS detail
    FROM (SELECT * FROM payment_outbox.payment_outbox_pending WHERE participant_id = p_participant_id) AS p
    LEFT JOIN history AS h ON p.outbox_id = h.outbox_id
    WHERE p.attempt_base IS DISTINCT FROM coalesce(h.last_release_no, 0)
    UNION ALL
    SELECT
        'key_without_item' AS invariant,
        k.outbox_id,
        NULL AS participant_id,
        format(
            'idempotency key %s of instruction %s is registered to an item with neither a pending nor a ledger row',
            k.idempotency_key, k.instruction_id
        ) AS detail
    FROM (SELECT * FROM payment_outbox.payment_outbox_idempotency_keys WHERE participant_id = p_participant_id) AS k
    WHERE
        NOT EXISTS (
            SELECT FROM (SELECT * FROM payment_outbox.payment_outbox_pending WHERE participant_id = p_participant_id) AS p
            WHERE p.outbox_id = k.outbox_id
        )
        AND NOT EXISTS (
            SELECT FROM (SELECT * FROM payment_outbox.payment_outbox_attempts WHERE participant_id = p_participant_id) AS a
            WHERE a.outbox_id = k.outbox_id
        )
        -- A key registered in a retired range: its item's history was retired, not lost.
        AND NOT EXISTS (
            SELECT FROM jsonb_to_recordset(v_retired) AS r (partition_name text, range_from timestamptz, range_to timestamptz, retired_at timestamptz)
            WHERE k.registered_at >= r.range_from AND k.registered_at < r.range_to
        )
    UNION ALL
    -- The ledger has no DEFAULT partition: the claim of an item created in a month without a
    -- partition would fail (and dispatch nothing). Named for each such pending item, and a month
    -- ahead, while ensure_attempt_partitions() can still prevent it.
    SELECT
        'ledger_partition_missing' AS invariant,
        p.outbox_id,
        p.participant_id,
        format(
            'created %s, a month no ledger partition holds: run payment_outbox.ensure_attempt_partitions()',
            p.created_at
        ) AS detail
    FROM (SELECT * FROM payment_outbox.payment_outbox_pending WHERE participant_id = p_participant_id) AS p
    WHERE
        EXISTS (
            SELECT FROM pg_catalog.pg_class AS c
            WHERE
                c.relnamespace = 'payment_outbox'::regnamespace
                AND c.relname = 'payment_outbox_attempts'
                AND c.relkind = 'p'
        )
        AND NOT EXISTS (
            SELECT FROM payment_outbox.payment_outbox_attempt_partitions AS r
            WHERE
                r.state = 'attached'
                AND p.created_at >= coalesce(r.range_from, '-infinity')
                AND p.created_at < r.range_to
        )
    UNION ALL
    SELECT
        'ledger_partition_missing' AS invariant,
        NULL::uuid AS outbox_id,
        NULL AS participant_id,
        format(
            'the ledger''s partitions end at %s, within a month: run payment_outbox.ensure_attempt_partitions()',
            coalesce(m.partitions_end::text, 'no partition')
        ) AS detail
    FROM (
        SELECT max(r.range_to) AS partitions_end
        FROM payment_outbox.payment_outbox_attempt_partitions AS r
        WHERE r.state = 'attached'
    ) AS m
    WHERE
        coalesce(m.partitions_end, '-infinity') < pg_catalog.now() + interval '1 month'
        AND EXISTS (
            SELECT FROM pg_catalog.pg_class AS c
            WHERE
                c.relnamespace = 'payment_outbox'::regnamespace
                AND c.relname = 'payment_outbox_attempts'
                AND c.relkind = 'p'
        )
    UNION ALL
    SELECT
        'item_lost' AS invariant,
        h.outbox_id,
        NULL AS participant_id,
        format('latest attempt %s is %s, and the item is neither terminal nor pending', h.last_attempt_no, h.last_state) AS detail
    FROM history AS h
    WHERE
        h.terminal_attempts = 0
        AND NOT EXISTS (
            SELECT FROM (SELECT * FROM payment_outbox.payment_outbox_pending WHERE participant_id = p_participant_id) AS p
            WHERE p.outbox_id = h.outbox_id
        );
END;
$$;

COMMENT ON FUNCTION payment_outbox._check_participant_invariants(text) IS
'On Citus: the rows check_invariants() returns for one participant (and the ledger-wide partition '
'checks), read in one statement routed to the participant''s shard group.';

REVOKE ALL ON FUNCTION payment_outbox._check_participant_invariants(text) FROM PUBLIC;
