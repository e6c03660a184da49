-- pause_rail: stops claims taking a rail's items until resume_rail; in-flight items finish normally.
CREATE OR REPLACE FUNCTION payment_outbox.pause_rail(p_rail_type text, p_reason text, p_actor text)
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
    -- Read here, not in the UPDATE's CASE: Citus refuses a non-immutable function inside CASE
    -- in an UPDATE of its reference table payment_outbox_rails.
    v_now timestamptz := now();
    v_login text := session_user::text;
BEGIN
    PERFORM payment_outbox._require_argument('rail_type', p_rail_type);
    PERFORM payment_outbox._require_argument('reason', p_reason);
    PERFORM payment_outbox._require_argument('actor', p_actor);

    -- The rail's row, created or locked: pauses and resumes of one rail run one after the other.
    INSERT INTO payment_outbox.payment_outbox_rails AS r (rail_type, paused, reason, actor)
    VALUES (p_rail_type, FALSE, NULL, p_actor)
    ON CONFLICT ON CONSTRAINT payment_outbox_rails_pkey DO NOTHING;
    SELECT r.paused INTO STRICT v_was_paused
    FROM payment_outbox.payment_outbox_rails AS r
    WHERE r.rail_type = p_rail_type
    FOR UPDATE;

    UPDATE payment_outbox.payment_outbox_rails AS r
    -- A rail paused already keeps the time of its first pause (paused_since) and the login that
    -- made it; the reason and actor are the latest.
    SET
        paused = TRUE,
        reason = p_reason,
        actor = p_actor,
        changed_at = CASE WHEN v_was_paused THEN r.changed_at ELSE v_now END,
        changed_by = CASE WHEN v_was_paused THEN r.changed_by ELSE v_login END
    WHERE r.rail_type = p_rail_type;

    -- Every item not in flight leaves the claim index, set-based. A claim holding one of them
    -- locked is waited for; the item is then in flight and keeps its claim. A repeated pause
    -- flags the items an enqueue slipped in unflagged while the earlier pause committed.
    UPDATE payment_outbox.payment_outbox_pending AS p
    SET paused = TRUE
    WHERE p.rail_type = p_rail_type AND p.attempt_no IS NULL AND NOT p.paused;
    GET DIAGNOSTICS v_items = ROW_COUNT;

    INSERT INTO payment_outbox.payment_outbox_rail_history (
        rail_type, request, was_paused, reason, actor, items_changed
    )
    VALUES (p_rail_type, 'PAUSE', v_was_paused, p_reason, p_actor, v_items);

    rail_type := p_rail_type;
    paused := TRUE;
    was_paused := v_was_paused;
    items_changed := v_items;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION payment_outbox.pause_rail(text, text, text) IS
'Pauses a rail: claims take none of its items until resume_rail(); items in flight complete as '
'usual, and one requeued (RETRYABLE, repair) while the rail is paused stays paused. Idempotent: '
'pausing a paused rail changes its reason and actor and is recorded too. Every call is appended '
'to payment_outbox_rail_history. A null, blank or too long argument is PO010 / PO015, nothing written.';

REVOKE ALL ON FUNCTION payment_outbox.pause_rail(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.pause_rail(text, text, text) TO outbox_operator;
