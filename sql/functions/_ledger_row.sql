-- The one place that says what a ledger row holds: the item's identity, the attempt, its outcome.
CREATE OR REPLACE FUNCTION payment_outbox._ledger_row(
    p_item payment_outbox.payment_outbox_pending,
    p_attempt_no integer,
    p_state payment_outbox.outbox_attempt_state,
    p_completed_at timestamptz DEFAULT NULL,
    p_error_code text DEFAULT NULL,
    p_error_message text DEFAULT NULL,
    p_rail_reference text DEFAULT NULL,
    p_reason text DEFAULT NULL,
    p_actor text DEFAULT NULL
)
-- The ledger's columns in its order (a proof compares them with the catalog), so that a caller
-- appends with `INSERT INTO payment_outbox.payment_outbox_attempts SELECT l.* FROM ... AS l`.
-- Not `SETOF payment_outbox_attempts`: the ledger's conversion to partitions swaps the table, and
-- a function must not hold on to the old one's row type.
RETURNS TABLE (
    outbox_id uuid,
    instruction_id text,
    participant_id text,
    sequence_id bigint,
    idempotency_key text,
    rail_type text,
    payload_sha256 bytea,
    item_created_at timestamptz,
    attempt_no integer,
    state payment_outbox.outbox_attempt_state,
    claimed_at timestamptz,
    completed_at timestamptz,
    worker_id text,
    error_code text,
    error_message text,
    rail_reference text,
    latency_ms numeric,
    actor text,
    reason text
)
LANGUAGE sql
IMMUTABLE
-- Neither SECURITY DEFINER nor a SET clause, and a set of one row: so that a caller's `FROM` or
-- `LATERAL` this function is inlined into the caller's plan (a batch stays one INSERT, never a
-- call per row; given ROW(...)::payment_outbox_pending, each field is read straight from the
-- caller's row). Every name is schema-qualified; the only callers are SECURITY DEFINER functions.
AS $$
    -- The claim (claimed_at, worker_id) is the item's: the one this row ends, or for a
    -- DISPATCHING row the one it starts; an operator's row has none. Latency only for an ended claim.
    SELECT
        (p_item).outbox_id,
        (p_item).instruction_id,
        (p_item).participant_id,
        (p_item).sequence_id,
        (p_item).idempotency_key,
        (p_item).rail_type,
        (p_item).payload_sha256,
        (p_item).created_at,
        p_attempt_no,
        p_state,
        (p_item).claimed_at,
        p_completed_at,
        (p_item).worker_id,
        p_error_code,
        p_error_message,
        p_rail_reference,
        CASE
            WHEN (p_item).claimed_at IS NOT NULL AND p_completed_at IS NOT NULL
                THEN payment_outbox._latency_ms((p_item).claimed_at, p_completed_at)
        END,
        p_actor,
        p_reason
$$;

COMMENT ON FUNCTION payment_outbox._ledger_row(
    payment_outbox.payment_outbox_pending, integer, payment_outbox.outbox_attempt_state, timestamptz,
    text, text, text, text, text
) IS
'The ledger row (payment_outbox_attempts, its columns in order) recording attempt p_attempt_no of '
'item p_item in p_state: the item''s identity and payload hash, its claim (claimed_at, worker_id), '
'the outcome given, latency_ms from the claim to p_completed_at when both are known. One row; '
'inlined into the caller''s plan, where INSERT INTO payment_outbox.payment_outbox_attempts SELECT '
'appends it.';

REVOKE ALL ON FUNCTION payment_outbox._ledger_row(
    payment_outbox.payment_outbox_pending, integer, payment_outbox.outbox_attempt_state, timestamptz,
    text, text, text, text, text
) FROM PUBLIC;
