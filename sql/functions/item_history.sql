-- item_history(uuid): every state change of one item, in order, without its payload.
-- tables/0013 added the actor and reason of operators' changes: a new result column, which
-- CREATE OR REPLACE cannot add, so the function is dropped and created again in one transaction
-- (its grants below); a caller that names its columns sees no other change.
DROP FUNCTION IF EXISTS payment_outbox.item_history(uuid);

CREATE OR REPLACE FUNCTION payment_outbox.item_history(p_outbox_id uuid)
RETURNS TABLE (
    outbox_id uuid,
    instruction_id text,
    idempotency_key text,
    participant_id text,
    sequence_id bigint,
    rail_type text,
    attempt_no integer,
    state text,
    changed_at timestamptz,
    worker_id text,
    claimed_at timestamptz,
    completed_at timestamptz,
    latency_ms numeric,
    error_code text,
    error_message text,
    rail_reference text,
    actor text,
    reason text
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_retired text;
BEGIN
    PERFORM payment_outbox._require_argument('outbox_id', p_outbox_id::text);
    -- The enqueue is the first change (attempt 0); its identity comes from the pending row while
    -- the item is live, from its first ledger row once it has left pending.
    RETURN QUERY
    WITH item AS (
        SELECT
            p.outbox_id, p.instruction_id, p.idempotency_key, p.participant_id, p.sequence_id, p.rail_type,
            p.created_at
        FROM payment_outbox.payment_outbox_pending AS p
        WHERE p.outbox_id = p_outbox_id
        UNION ALL
        (
            SELECT
                a.outbox_id, a.instruction_id, a.idempotency_key, a.participant_id, a.sequence_id, a.rail_type,
                a.item_created_at
            FROM payment_outbox.payment_outbox_attempts AS a
            WHERE a.outbox_id = p_outbox_id
            ORDER BY a.attempt_no
            LIMIT 1
        )
        LIMIT 1
    )

    SELECT
        i.outbox_id, i.instruction_id, i.idempotency_key, i.participant_id, i.sequence_id, i.rail_type,
        0, 'ENQUEUED'::text, i.created_at,
        NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::numeric, NULL::text, NULL::text, NULL::text,
        NULL::text, NULL::text
    FROM item AS i
    UNION ALL
    SELECT
        i.outbox_id, i.instruction_id, i.idempotency_key, i.participant_id, i.sequence_id, i.rail_type,
        a.attempt_no, a.state::text, coalesce(a.completed_at, a.claimed_at),
        a.worker_id, a.claimed_at, a.completed_at, a.latency_ms, a.error_code, a.error_message, a.rail_reference,
        a.actor, a.reason
    FROM item AS i
    INNER JOIN payment_outbox.payment_outbox_attempts AS a ON i.outbox_id = a.outbox_id
    ORDER BY 7;
    IF NOT FOUND THEN
        -- Retired is not unknown: the payment existed and finished; never to be sent again.
        v_retired := payment_outbox._retired_item(p_outbox_id);
        IF v_retired IS NOT NULL THEN
            RAISE EXCEPTION '%', v_retired
                USING ERRCODE = 'PO034',
                      HINT = 'The payment finished long ago: its history is in the export, not in the database. '
                      'Never send it again under a new key.';
        END IF;
        RAISE EXCEPTION 'unknown outbox item %', p_outbox_id
            USING ERRCODE = 'PO003',
                  HINT = 'Look the item up by (instruction_id, idempotency_key) with item_history(text, text).';
    END IF;
END;
$$;

COMMENT ON FUNCTION payment_outbox.item_history(uuid) IS
'Every state change of one item in order: attempt 0 ENQUEUED (at its creation), then each ledger '
'row (DISPATCHING, DISPATCHED, RETRYABLE, FAILED, ZOMBIE_REQUEUE, QUARANTINED, RELEASED) with its '
'worker, claim and completion times, latency, error, rail reference, and the actor and reason of a '
'change an operator made (or the reason of a quarantine); changed_at is when the change happened. '
'Never the payload. PO010 for a null id, PO003 for an unknown item, PO034 for one whose history '
'retention retired (naming when, the partition and the export).';

REVOKE ALL ON FUNCTION payment_outbox.item_history(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.item_history(uuid) TO outbox_readonly, outbox_auditor;
