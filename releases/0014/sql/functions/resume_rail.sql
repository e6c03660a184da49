-- resume_rail: lets claims take a paused rail's items again, in their original due order.
CREATE OR REPLACE FUNCTION payment_outbox.resume_rail(p_rail_type text, p_actor text)
RETURNS TABLE (rail_type text, paused boolean, was_paused boolean, items_changed bigint)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_was_paused boolean;
    v_items bigint;
BEGIN
    PERFORM payment_outbox._require_argument('rail_type', p_rail_type);
    PERFORM payment_outbox._require_argument('actor', p_actor);

    -- Locks the rail's row, so pauses and resumes of one rail run one after the other; a rail
    -- never paused has no row and nothing to resume.
    SELECT r.paused INTO v_was_paused
    FROM payment_outbox.payment_outbox_rails AS r
    WHERE r.rail_type = p_rail_type
    FOR UPDATE;
    v_was_paused := coalesce(v_was_paused, FALSE);

    UPDATE payment_outbox.payment_outbox_rails AS r
    SET paused = FALSE, reason = NULL, actor = p_actor, changed_at = now(), changed_by = session_user
    WHERE r.rail_type = p_rail_type;

    -- next_attempt_at is untouched: the items come back in the order they were due.
    UPDATE payment_outbox.payment_outbox_pending AS p
    SET paused = FALSE
    WHERE p.rail_type = p_rail_type AND p.paused;
    GET DIAGNOSTICS v_items = ROW_COUNT;

    INSERT INTO payment_outbox.payment_outbox_rail_history (
        rail_type, request, was_paused, reason, actor, items_changed
    )
    VALUES (p_rail_type, 'RESUME', v_was_paused, NULL, p_actor, v_items);

    rail_type := p_rail_type;
    paused := FALSE;
    was_paused := v_was_paused;
    items_changed := v_items;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION payment_outbox.resume_rail(text, text) IS
'Resumes a paused rail: its items are claimable again in their due order. Idempotent: resuming a '
'rail that is not paused (or was never paused) changes nothing and is recorded too. Every call is '
'appended to payment_outbox_rail_history. A null, blank or too long argument is PO010 / PO015, '
'nothing written.';

REVOKE ALL ON FUNCTION payment_outbox.resume_rail(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.resume_rail(text, text) TO outbox_operator;
