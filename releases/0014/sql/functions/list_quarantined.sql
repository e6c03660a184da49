-- list_quarantined: the items waiting in QUARANTINED for an operator, oldest first, without payload.
CREATE OR REPLACE FUNCTION payment_outbox.list_quarantined()
RETURNS TABLE (
    outbox_id uuid,
    instruction_id text,
    idempotency_key text,
    participant_id text,
    sequence_id bigint,
    rail_type text,
    attempt_count integer,
    quarantined_at timestamptz,
    quarantine_reason text
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
BEGIN ATOMIC
    SELECT
        p.outbox_id,
        p.instruction_id,
        p.idempotency_key,
        p.participant_id,
        p.sequence_id,
        p.rail_type,
        p.attempt_count,
        p.quarantined_at,
        p.quarantine_reason
    FROM payment_outbox.payment_outbox_pending AS p
    WHERE p.quarantined_at IS NOT NULL
    ORDER BY p.quarantined_at, p.outbox_id;
END;

COMMENT ON FUNCTION payment_outbox.list_quarantined() IS
'Every QUARANTINED item, oldest quarantine first: its identity (with the idempotency key to look '
'it up at the rail), attempt count, when and why it was quarantined. Never the payload.';

REVOKE ALL ON FUNCTION payment_outbox.list_quarantined() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.list_quarantined() TO outbox_operator, outbox_readonly;
