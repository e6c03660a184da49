-- The states an outbox item passes through, one ledger row per state change.
CREATE TYPE payment_outbox.outbox_attempt_state AS ENUM (
    'DISPATCHING',
    'DISPATCHED',
    'RETRYABLE',
    'FAILED',
    'ZOMBIE_REQUEUE'
);

COMMENT ON TYPE payment_outbox.outbox_attempt_state IS
'State recorded by one row of payment_outbox_attempts. DISPATCHED and FAILED are terminal.';

GRANT USAGE ON SCHEMA payment_outbox
TO outbox_ingest, outbox_executor, outbox_repair, outbox_readonly, outbox_auditor;
