-- The attempt_no at which a retry or a zombie requeue becomes FAILED instead.
CREATE OR REPLACE FUNCTION payment_outbox._max_attempt_count()
RETURNS integer
LANGUAGE sql
STABLE
AS $$
    -- The package's settings table, never a session setting: a caller cannot change it.
    SELECT coalesce((SELECT s.max_attempt_count FROM payment_outbox.payment_outbox_settings AS s), 20)
$$;

COMMENT ON FUNCTION payment_outbox._max_attempt_count() IS
'Maximum attempt count: payment_outbox_settings.max_attempt_count (20 if the row were missing). '
'Changed with set_outbox_settings(p_max_attempt_count => N), as outbox_operator.';

REVOKE ALL ON FUNCTION payment_outbox._max_attempt_count() FROM PUBLIC;
