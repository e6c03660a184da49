-- The reference worker's completion of one claimed attempt, fenced by its attempt_no.
SELECT
    attempt_no,
    state::text AS state
FROM payment_outbox.complete_outbox_attempt(
    %(outbox_id)s,
    %(attempt_no)s,
    %(state)s::payment_outbox.outbox_attempt_state,
    %(error_code)s,
    %(error_message)s,
    %(rail_reference)s
);
