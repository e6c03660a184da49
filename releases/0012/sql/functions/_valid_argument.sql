-- The test _require_argument makes, as a boolean a set-based caller can evaluate per row.
CREATE OR REPLACE FUNCTION payment_outbox._valid_argument(p_name text, p_value text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
-- Neither SECURITY DEFINER nor a SET clause, so that it is inlined into the caller's plan: a
-- payment file tests every argument of every item in one statement. The proof
-- enqueue_payment_outbox_batch.sql holds it equal to _require_argument on a set of values.
AS $$
    SELECT
        p_name IS NOT NULL AND p_value IS NOT NULL
        AND btrim(p_value, payment_outbox._space_characters()) <> ''
        AND length(p_value) <= payment_outbox._max_length(p_name)
$$;

COMMENT ON FUNCTION payment_outbox._valid_argument(text, text) IS
'True when _require_argument(p_name, p_value) would pass: the set-based form of the same rule, '
'used by enqueue_payment_outbox_batch to find the first bad item in one statement.';

REVOKE ALL ON FUNCTION payment_outbox._valid_argument(text, text) FROM PUBLIC;
