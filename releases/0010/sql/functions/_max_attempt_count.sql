-- The attempt_no at which a retry or a zombie requeue becomes FAILED instead.
CREATE OR REPLACE FUNCTION payment_outbox._max_attempt_count()
RETURNS integer
LANGUAGE sql
STABLE
AS $$
    SELECT coalesce(nullif(current_setting('payment_outbox.max_attempt_count', true), '')::integer, 20)
$$;

COMMENT ON FUNCTION payment_outbox._max_attempt_count() IS
'Maximum attempt count: the setting payment_outbox.max_attempt_count, 20 when unset. Change it per '
'database with ALTER DATABASE ... SET payment_outbox.max_attempt_count = N.';

REVOKE ALL ON FUNCTION payment_outbox._max_attempt_count() FROM PUBLIC;
