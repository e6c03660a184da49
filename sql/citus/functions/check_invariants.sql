-- check_invariants on Citus: every participant's invariants, checked on the node holding it, and the ledger-wide ones.
CREATE OR REPLACE FUNCTION payment_outbox.check_invariants()
RETURNS TABLE (invariant text, outbox_id uuid, participant_id text, detail text)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
-- The single-node statement joins the queue, the ledger and the key register by item and by key,
-- across participants: distributed by participant, those joins would cross shards. Every
-- invariant but the ledger-wide partition checks is about one participant's rows (on Citus a
-- key belongs to its participant), so the statement runs once per participant, routed to its
-- shard group; the partition checks, the same in every run, are returned once.
DECLARE
    v_participant text;
    v_found jsonb := '[]';
BEGIN
    FOR v_participant IN
        SELECT s.participant_id FROM payment_outbox.participant_outbox_sequences AS s
        UNION
        SELECT k.participant_id FROM payment_outbox.payment_outbox_idempotency_keys AS k
        UNION
        SELECT p.participant_id FROM payment_outbox.payment_outbox_pending AS p
        UNION
        SELECT a.participant_id FROM payment_outbox.payment_outbox_attempts AS a
    LOOP
        v_found := v_found || (
            SELECT coalesce(jsonb_agg(to_jsonb(c)), '[]')
            FROM payment_outbox._check_participant_invariants(v_participant) AS c
        );
    END LOOP;
    RETURN QUERY
    SELECT DISTINCT x.invariant, x.outbox_id, x.participant_id, x.detail
    FROM jsonb_to_recordset(v_found) AS x (invariant text, outbox_id uuid, participant_id text, detail text);
END;
$$;

COMMENT ON FUNCTION payment_outbox.check_invariants() IS
'On Citus: the rows the single-node check_invariants() returns, checked participant by participant '
'on the node holding each (_check_participant_invariants), the ledger-wide partition checks once. '
'One routed statement per participant: run it from monitoring at a modest interval.';
