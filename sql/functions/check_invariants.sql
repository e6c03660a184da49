-- check_invariants: one row per violated invariant of the outbox; empty when all hold.
CREATE OR REPLACE FUNCTION payment_outbox.check_invariants()
RETURNS TABLE (invariant text, outbox_id uuid, participant_id text, detail text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
-- A whole-table audit: hash joins cost it one pass per table. A nested loop, which the planner
-- picks when the statistics still say a freshly loaded table is empty, made it quadratic
-- (minutes for 50,000 items instead of about a second).
SET enable_nestloop = off
-- With nested loops disabled every plan's cost is huge, so JIT would compile this one statement on
-- every call: 4.3 s of LLVM for a 2 ms audit of an empty outbox (PostgreSQL 15 with JIT).
SET jit = off
BEGIN ATOMIC
    WITH items AS (
        SELECT
            p.outbox_id,
            p.participant_id,
            p.sequence_id,
            p.instruction_id,
            p.idempotency_key
        FROM payment_outbox.payment_outbox_pending AS p
        UNION
        SELECT
            a.outbox_id,
            a.participant_id,
            a.sequence_id,
            a.instruction_id,
            a.idempotency_key
        FROM payment_outbox.payment_outbox_attempts AS a
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
        FROM payment_outbox.payment_outbox_attempts AS a
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
            FROM payment_outbox.payment_outbox_retired_sequences AS s
            INNER JOIN payment_outbox._retired_attempt_ranges() AS r ON s.partition_name = r.partition_name
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
    FROM payment_outbox.participant_outbox_sequences AS s
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
            SELECT FROM payment_outbox.participant_outbox_sequences AS s
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
    LEFT JOIN payment_outbox.payment_outbox_idempotency_keys AS k
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
    FROM payment_outbox.payment_outbox_pending AS p
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
    FROM payment_outbox.payment_outbox_pending AS p
    INNER JOIN history AS h ON p.outbox_id = h.outbox_id
    WHERE p.attempt_no IS NULL AND h.last_state = 'DISPATCHING'
    UNION ALL
    SELECT
        'terminal_item_in_pending' AS invariant,
        p.outbox_id,
        p.participant_id,
        format('terminal attempt %s exists, the item is still pending', h.terminal_attempt_no) AS detail
    FROM payment_outbox.payment_outbox_pending AS p
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
    FROM payment_outbox.payment_outbox_pending AS p
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
    LEFT JOIN payment_outbox.payment_outbox_pending AS p ON h.outbox_id = p.outbox_id
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
    FROM payment_outbox.payment_outbox_pending AS p
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
    FROM payment_outbox.payment_outbox_idempotency_keys AS k
    WHERE
        NOT EXISTS (
            SELECT FROM payment_outbox.payment_outbox_pending AS p
            WHERE p.outbox_id = k.outbox_id
        )
        AND NOT EXISTS (
            SELECT FROM payment_outbox.payment_outbox_attempts AS a
            WHERE a.outbox_id = k.outbox_id
        )
        -- A key registered in a retired range: its item's history was retired, not lost.
        AND NOT EXISTS (
            SELECT FROM payment_outbox._retired_attempt_ranges() AS r
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
    FROM payment_outbox.payment_outbox_pending AS p
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
    -- A conversion that stopped after its CHECK: the old table takes no item created from its
    -- bound on, so from then no item can be created (PO035). Named with that deadline until
    -- outbox migrate (or outbox convert-ledger) finishes the conversion.
    SELECT
        'ledger_conversion_unfinished' AS invariant,
        NULL::uuid AS outbox_id,
        NULL AS participant_id,
        format(
            'the ledger''s conversion to partitions is unfinished (%s): items created from %s on cannot be written; run outbox migrate before then',
            r.partition_name, r.range_to
        ) AS detail
    FROM payment_outbox.payment_outbox_attempt_partitions AS r
    WHERE r.state = 'converting'
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
            SELECT FROM payment_outbox.payment_outbox_pending AS p
            WHERE p.outbox_id = h.outbox_id
        );
END;

COMMENT ON FUNCTION payment_outbox.check_invariants() IS
'Returns one row per violated invariant, none when the outbox is consistent: sequence duplicates '
'and gaps, allocator out of step, an idempotency key held by two items or not registered to its '
'item, more than one terminal attempt, attempt numbers not 1..n, '
'attempts after a terminal one, in-flight rows whose latest attempt is not their DISPATCHING '
'one, terminal items still pending, quarantined items whose latest attempt is not their '
'QUARANTINED one and QUARANTINED attempts of items not quarantined, an attempt budget not counted '
'from the latest release, items neither pending nor terminal, registered keys whose item '
'has no row at all (unless retention retired the range it was registered in; retired items count '
'towards their participant''s sequence from payment_outbox_retired_sequences), and a partitioned ledger '
'without the partition of a pending item''s month or whose partitions end within a month '
'(ledger_partition_missing), and a conversion of the ledger to partitions left unfinished, with the '
'time from which no item can be created (ledger_conversion_unfinished). Reads the whole ledger and the key register: '
'run it from monitoring at a modest interval, not on every request.';

REVOKE ALL ON FUNCTION payment_outbox.check_invariants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.check_invariants() TO outbox_readonly, outbox_auditor;
