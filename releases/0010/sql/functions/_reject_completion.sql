-- Raises the error for a completion that matched no current claim: stale (PO002) or unknown (PO003).
CREATE OR REPLACE FUNCTION payment_outbox._reject_completion(p_outbox_id uuid, p_attempt_no integer)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
DECLARE
    v_current_attempt_no integer;
BEGIN
    SELECT p.attempt_no INTO v_current_attempt_no
    FROM payment_outbox.payment_outbox_pending AS p
    WHERE p.outbox_id = p_outbox_id;
    IF FOUND THEN
        RAISE EXCEPTION 'attempt % of outbox item % is stale: the current claim is %',
            coalesce(p_attempt_no::text, 'null'), p_outbox_id, coalesce(v_current_attempt_no::text, 'none')
            USING ERRCODE = 'PO002',
                  HINT = 'The claim was repaired or completed; only the latest claim may complete.';
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
'exists (pending under another claim, or terminal), PO003 when it does not.';

REVOKE ALL ON FUNCTION payment_outbox._reject_completion(uuid, integer) FROM PUBLIC;
