-- Exponential backoff before a RETRYABLE item is due again.
CREATE OR REPLACE FUNCTION payment_outbox._retry_delay(p_attempt_no integer)
RETURNS interval
LANGUAGE sql
IMMUTABLE
AS $$
    -- Each dispatch that ends RETRYABLE takes two attempt numbers, so attempt_no / 2 counts
    -- the retries so far: 1 s, 2 s, 4 s, ... capped at 300 s.
    SELECT make_interval(secs => least(300, power(2, least(greatest(p_attempt_no / 2 - 1, 0), 20))))
$$;

COMMENT ON FUNCTION payment_outbox._retry_delay(integer) IS
'Backoff after the RETRYABLE row with this attempt_no: 1 s after the first retry, doubling each '
'retry, capped at 300 s.';

REVOKE ALL ON FUNCTION payment_outbox._retry_delay(integer) FROM PUBLIC;
