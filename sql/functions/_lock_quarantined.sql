-- Locks the pending row of a quarantined item for an operator's decision, or refuses (PO030, PO003).
CREATE OR REPLACE FUNCTION payment_outbox._lock_quarantined(p_outbox_id uuid, p_reason text, p_actor text)
RETURNS SETOF payment_outbox.payment_outbox_pending
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
DECLARE
    v_item payment_outbox.payment_outbox_pending%ROWTYPE;
BEGIN
    PERFORM payment_outbox._require_argument('outbox_id', p_outbox_id::text);
    PERFORM payment_outbox._require_argument('reason', p_reason);
    PERFORM payment_outbox._require_argument('actor', p_actor);
    -- The row lock orders this decision against a concurrent release, fail, completion or repair
    -- of the item: it waits for them, then reads the row as they left it, and finds it only if it
    -- is still quarantined. A claim never reaches a quarantined row (never due).
    SELECT * INTO v_item
    FROM payment_outbox.payment_outbox_pending AS p
    WHERE p.outbox_id = p_outbox_id AND p.quarantined_at IS NOT NULL
    FOR UPDATE;
    IF v_item.outbox_id IS NULL THEN
        IF EXISTS (SELECT FROM payment_outbox.payment_outbox_pending AS p WHERE p.outbox_id = p_outbox_id)
            OR EXISTS (SELECT FROM payment_outbox.payment_outbox_attempts AS a WHERE a.outbox_id = p_outbox_id) THEN
            RAISE EXCEPTION 'outbox item % is not quarantined', p_outbox_id
                USING ERRCODE = 'PO030',
                      HINT = 'It was released or failed already, or it is pending, in flight or terminal: '
                      'see outbox show.';
        END IF;
        -- An item whose history retention retired is terminal, not unknown.
        IF payment_outbox._retired_item(p_outbox_id) IS NOT NULL THEN
            RAISE EXCEPTION 'outbox item % is not quarantined: %', p_outbox_id, payment_outbox._retired_item(p_outbox_id)
                USING ERRCODE = 'PO030',
                      HINT = 'It was terminal when retention retired it: nothing to release or fail.';
        END IF;
        RAISE EXCEPTION 'unknown outbox item %', p_outbox_id
            USING ERRCODE = 'PO003';
    END IF;
    RETURN NEXT v_item;
END;
$$;

COMMENT ON FUNCTION payment_outbox._lock_quarantined(uuid, text, text) IS
'Checks an operator''s decision on a quarantined item (PO010 for a null id or a blank reason or actor, '
'PO015 when too long) and returns its pending row locked FOR UPDATE; PO030 when the item exists but '
'is not quarantined (now) or retention retired its history, PO003 when it does not exist.';

REVOKE ALL ON FUNCTION payment_outbox._lock_quarantined(uuid, text, text) FROM PUBLIC;
