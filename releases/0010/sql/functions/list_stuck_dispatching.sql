-- list_stuck_dispatching: in-flight items whose claim is older than a threshold.
CREATE OR REPLACE FUNCTION payment_outbox.list_stuck_dispatching(p_threshold_seconds integer)
RETURNS TABLE (
    outbox_id uuid,
    participant_id text,
    sequence_id bigint,
    rail_type text,
    attempt_no integer,
    worker_id text,
    claimed_at timestamptz,
    age_seconds numeric
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    PERFORM payment_outbox._require_threshold(p_threshold_seconds);
    RETURN QUERY
    SELECT
        f.outbox_id, f.participant_id, f.sequence_id, f.rail_type, f.attempt_no, f.worker_id,
        f.claimed_at, f.age_seconds
    FROM payment_outbox.payment_outbox_in_flight AS f
    WHERE f.claimed_at < now() - make_interval(secs => p_threshold_seconds)
    ORDER BY f.claimed_at;
END;
$$;

COMMENT ON FUNCTION payment_outbox.list_stuck_dispatching(integer) IS
'In-flight items whose claim is older than p_threshold_seconds: the items the next repair cycle '
'with that threshold would requeue.';

REVOKE ALL ON FUNCTION payment_outbox.list_stuck_dispatching(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.list_stuck_dispatching(integer) TO outbox_readonly, outbox_repair;
