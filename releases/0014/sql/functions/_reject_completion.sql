-- Raises the error for a completion that matched no current claim: stale (PO002) or unknown (PO003).
CREATE OR REPLACE FUNCTION payment_outbox._reject_completion(p_outbox_id uuid, p_attempt_no integer)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    -- The message never names the current attempt or its worker: a stale worker must not learn
    -- the fencing token of a claim that is not its own.
    IF EXISTS (SELECT FROM payment_outbox.payment_outbox_pending AS p WHERE p.outbox_id = p_outbox_id) THEN
        RAISE EXCEPTION 'attempt % of outbox item % is stale: it is not a current claim of this worker',
            coalesce(p_attempt_no::text, 'null'), p_outbox_id
            USING ERRCODE = 'PO002',
                  HINT = 'The claim was repaired, completed or is held by another worker; do not dispatch again.';
    END IF;
    IF EXISTS (SELECT FROM payment_outbox.payment_outbox_attempts AS a WHERE a.outbox_id = p_outbox_id) THEN
        RAISE EXCEPTION 'attempt % of outbox item % is stale: the item is already terminal',
            coalesce(p_attempt_no::text, 'null'), p_outbox_id
            USING ERRCODE = 'PO002',
                  HINT = 'Another completion or a zombie repair ended this attempt; do not dispatch again.';
    END IF;
    RAISE EXCEPTION 'unknown outbox item %', p_outbox_id
        USING ERRCODE = 'PO003';
END;
$$;

COMMENT ON FUNCTION payment_outbox._reject_completion(uuid, integer) IS
'Called by complete_outbox_attempt when no current claim matched: raises PO002 when the item '
'exists (pending under another claim or worker, or terminal), PO003 when it does not. Never names '
'the current attempt.';

REVOKE ALL ON FUNCTION payment_outbox._reject_completion(uuid, integer) FROM PUBLIC;
