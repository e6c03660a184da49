-- set_outbox_settings: the only way to change the package's settings; every change is kept.
-- notify_on_enqueue (tables/0015) is a new parameter and a new column of the answer. CREATE OR REPLACE
-- can change neither, and the two forms side by side would make a call with one argument ambiguous
-- (42725), so the one-argument form is dropped here, in the transaction that creates this one:
-- calls by name or with one argument reach the new form.
DROP FUNCTION IF EXISTS payment_outbox.set_outbox_settings(integer);

CREATE OR REPLACE FUNCTION payment_outbox.set_outbox_settings(
    p_max_attempt_count integer DEFAULT NULL,
    p_notify_on_enqueue boolean DEFAULT NULL
)
RETURNS TABLE (max_attempt_count integer, notify_on_enqueue boolean, updated_at timestamptz, updated_by text)
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

    IF p_notify_on_enqueue IS DISTINCT FROM v_old.notify_on_enqueue AND p_notify_on_enqueue IS NOT NULL THEN
        UPDATE payment_outbox.payment_outbox_settings AS s
        SET notify_on_enqueue = p_notify_on_enqueue, updated_at = now(), updated_by = session_user
        WHERE s.singleton;
        INSERT INTO payment_outbox.payment_outbox_settings_history (setting, old_value, new_value)
        VALUES ('notify_on_enqueue', v_old.notify_on_enqueue::text, p_notify_on_enqueue::text);
    END IF;

    RETURN QUERY
    SELECT s.max_attempt_count, s.notify_on_enqueue, s.updated_at, s.updated_by
    FROM payment_outbox.payment_outbox_settings AS s;
END;
$$;

COMMENT ON FUNCTION payment_outbox.set_outbox_settings(integer, boolean) IS
'Changes the package''s settings; a NULL argument leaves its setting as it is. Values outside '
'their range raise PO016 and change nothing. p_notify_on_enqueue switches the NOTIFY that wakes '
'listening workers (off by default: it serialises committing enqueues on a global lock). Each '
'change is appended to payment_outbox_settings_history with the login that made it, the old and '
'the new value. Returns the settings as they now are.';

REVOKE ALL ON FUNCTION payment_outbox.set_outbox_settings(integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.set_outbox_settings(integer, boolean) TO outbox_operator;
