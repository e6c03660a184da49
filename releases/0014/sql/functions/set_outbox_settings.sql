-- set_outbox_settings: the only way to change the package's settings; every change is kept.
CREATE OR REPLACE FUNCTION payment_outbox.set_outbox_settings(p_max_attempt_count integer DEFAULT NULL)
RETURNS TABLE (max_attempt_count integer, updated_at timestamptz, updated_by text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_old payment_outbox.payment_outbox_settings%ROWTYPE;
BEGIN
    IF p_max_attempt_count IS NOT NULL AND p_max_attempt_count NOT BETWEEN 2 AND 1000 THEN
        RAISE EXCEPTION 'max_attempt_count must be a whole number from 2 to 1000, got %', p_max_attempt_count
            USING ERRCODE = 'PO016',
                  HINT = 'At the maximum a retry or a zombie requeue is recorded QUARANTINED; 20 is the default.';
    END IF;

    -- The row lock orders concurrent changes, so each history row's old value is the value it replaced.
    SELECT * INTO STRICT v_old FROM payment_outbox.payment_outbox_settings FOR UPDATE;

    IF p_max_attempt_count IS DISTINCT FROM v_old.max_attempt_count AND p_max_attempt_count IS NOT NULL THEN
        UPDATE payment_outbox.payment_outbox_settings AS s
        SET max_attempt_count = p_max_attempt_count, updated_at = now(), updated_by = session_user
        WHERE s.singleton;
        INSERT INTO payment_outbox.payment_outbox_settings_history (setting, old_value, new_value)
        VALUES ('max_attempt_count', v_old.max_attempt_count::text, p_max_attempt_count::text);
    END IF;

    RETURN QUERY
    SELECT s.max_attempt_count, s.updated_at, s.updated_by FROM payment_outbox.payment_outbox_settings AS s;
END;
$$;

COMMENT ON FUNCTION payment_outbox.set_outbox_settings(integer) IS
'Changes the package''s settings; a NULL argument leaves its setting as it is. Values outside '
'their range raise PO016 and change nothing. Each change is appended to '
'payment_outbox_settings_history with the login that made it, the old and the new value. Returns '
'the settings as they now are.';

REVOKE ALL ON FUNCTION payment_outbox.set_outbox_settings(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.set_outbox_settings(integer) TO outbox_operator;
