-- The one rule for the attempt limit: a retry or a zombie requeue at the limit becomes QUARANTINED.
CREATE OR REPLACE FUNCTION payment_outbox._state_at_limit(
    p_state payment_outbox.outbox_attempt_state,
    p_attempt_no integer,
    p_attempt_base integer,
    p_error_code text,
    p_error_message text
)
RETURNS TABLE (state payment_outbox.outbox_attempt_state, reason text)
LANGUAGE sql
STABLE
-- Neither SECURITY DEFINER nor a SET clause, and a set of one row: so that a caller's `FROM` or
-- `LATERAL` this function is inlined into the caller's plan (a batch stays one statement, never a
-- call per row). Every name is schema-qualified, and the only callers are SECURITY DEFINER
-- functions with a pinned search_path.
AS $$
    -- The state is tested first, so that a DISPATCHED or FAILED completion never reads the setting.
    -- The budget counts from the item's latest release (attempt_base). At the limit a machine never
    -- decides FAILED: a retried payment may have gone out, a zombie's outcome is unknown; a person
    -- decides (release_quarantined, fail_quarantined).
    SELECT
        CASE
            WHEN p_state IN ('RETRYABLE', 'ZOMBIE_REQUEUE')
                AND p_attempt_no - p_attempt_base >= payment_outbox._max_attempt_count()
                -- Cast from text when it runs: migrate creates this function in the transaction
                -- that adds the value (tables/0013), where the enum constant is refused (55P04).
                THEN 'QUARANTINED'::text::payment_outbox.outbox_attempt_state
            ELSE p_state
        END,
        CASE
            WHEN p_state NOT IN ('RETRYABLE', 'ZOMBIE_REQUEUE')
                OR p_attempt_no - p_attempt_base < payment_outbox._max_attempt_count()
                THEN NULL
            WHEN p_state = 'RETRYABLE'
                THEN format(
                    'retries exhausted: RETRYABLE%s at attempt %s, the maximum attempt count is %s',
                    coalesce(' (' || p_error_code || ')', ''), p_attempt_no - p_attempt_base,
                    payment_outbox._max_attempt_count()
                )
            ELSE format(
                'outcome unknown: %s, at the maximum attempt count %s',
                p_error_message, payment_outbox._max_attempt_count()
            )
        END
$$;

COMMENT ON FUNCTION payment_outbox._state_at_limit(
    payment_outbox.outbox_attempt_state, integer, integer, text, text
) IS
'The state to record for an attempt p_attempt_no of an item whose budget counts from p_attempt_base: '
'RETRYABLE (a completion) or ZOMBIE_REQUEUE (repair) becomes QUARANTINED once p_attempt_no - '
'p_attempt_base reaches _max_attempt_count(), with the reason the ledger and pending record (naming '
'p_error_code for a retry, p_error_message for a zombie); any other state, or below the limit, is '
'returned as given with a NULL reason. One row; inlined into the caller''s plan.';

REVOKE ALL ON FUNCTION payment_outbox._state_at_limit(
    payment_outbox.outbox_attempt_state, integer, integer, text, text
) FROM PUBLIC;
