-- claim_outbox_batch: hands due items to one worker, each with a new DISPATCHING attempt.
CREATE OR REPLACE FUNCTION payment_outbox.claim_outbox_batch(p_worker_id text, p_batch_size integer)
RETURNS TABLE (
    outbox_id uuid,
    attempt_no integer,
    instruction_id text,
    participant_id text,
    sequence_id bigint,
    idempotency_key text,
    rail_type text,
    payload jsonb,
    attempt_count integer,
    claimed_at timestamptz
)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
-- Planned once per session: a custom plan per call would cost more than the claim itself.
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_coverage tstzmultirange;
BEGIN
    PERFORM payment_outbox._require_argument('worker_id', p_worker_id);
    v_coverage := payment_outbox._ledger_coverage();
    PERFORM payment_outbox._require_batch_size(p_batch_size);

    -- Items left flagged on a rail that is not paused: their enqueue or requeue read the rail
    -- paused just before a resume committed. Only the rails not paused are looked up in the
    -- paused index, so a paused rail's items cost nothing here. Normally none.
    UPDATE payment_outbox.payment_outbox_pending AS p
    SET paused = FALSE
    WHERE p.outbox_id = ANY(ARRAY(
        SELECT s.outbox_id
        FROM payment_outbox.payment_outbox_rails AS r
        INNER JOIN payment_outbox.payment_outbox_pending AS s ON r.rail_type = s.rail_type
        WHERE NOT r.paused AND s.paused
        FOR UPDATE OF s SKIP LOCKED
    ));

    RETURN QUERY
    WITH claimed AS (
        UPDATE payment_outbox.payment_outbox_pending AS p
        SET
            attempt_no = p.attempt_count + 1,
            attempt_count = p.attempt_count + 1,
            worker_id = p_worker_id,
            claimed_at = now()
        -- An array, not a join: the plan then reaches each claimed row through the primary key
        -- whatever batch size it was planned for, so one generic plan serves every call.
        WHERE p.outbox_id = ANY(ARRAY(
            SELECT d.outbox_id
            FROM payment_outbox.payment_outbox_pending AS d
            WHERE
                d.attempt_no IS NULL AND NOT d.paused AND d.next_attempt_at <= now()
                -- The flag keeps a paused rail's items out of the index; this keeps out the few
                -- an enqueue flagged too late (it read the rail just before a pause committed).
                AND NOT EXISTS (
                    SELECT
                    FROM payment_outbox.payment_outbox_rails AS r
                    WHERE r.rail_type = d.rail_type AND r.paused
                )
                -- An item created at a time no ledger partition holds cannot be claimed (its
                -- DISPATCHING row would fail, and with it the whole batch): it waits, named by
                -- check_invariants(), until ensure_attempt_partitions() recreates its month.
                AND (v_coverage IS NULL OR v_coverage @> d.created_at)
            ORDER BY d.next_attempt_at
            LIMIT p_batch_size
            FOR UPDATE OF d SKIP LOCKED
        ))
        RETURNING p.*
    ),

    recorded AS (
        -- claimed's row is the pending row (RETURNING p.*): cast, it is read field by field, no
        -- copy of the row is made.
        INSERT INTO payment_outbox.payment_outbox_attempts
        SELECT l.*
        FROM claimed AS c
        CROSS JOIN LATERAL payment_outbox._ledger_row(
            c::payment_outbox.payment_outbox_pending, c.attempt_no, 'DISPATCHING'
        ) AS l
    )

    SELECT
        c.outbox_id, c.attempt_no, c.instruction_id, c.participant_id, c.sequence_id,
        c.idempotency_key, c.rail_type, c.payload, c.attempt_count, c.claimed_at
    FROM claimed AS c
    ORDER BY c.next_attempt_at, c.participant_id, c.sequence_id;
END;
$$;

COMMENT ON FUNCTION payment_outbox.claim_outbox_batch(text, integer) IS
'Claims up to p_batch_size due items that are not in flight, oldest due first, skipping rows '
'locked by other claimers, the items of paused rails (pause_rail) and items created in a month no '
'ledger partition holds (check_invariants() names them ledger_partition_missing). Appends one DISPATCHING '
'attempt per item; its attempt_no is the fencing token to pass to complete_outbox_attempt.';

REVOKE ALL ON FUNCTION payment_outbox.claim_outbox_batch(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.claim_outbox_batch(text, integer) TO outbox_executor;
