-- The append-only ledger: one row per state change of an outbox item.
CREATE TABLE payment_outbox.payment_outbox_attempts (
    outbox_id uuid NOT NULL,
    instruction_id text NOT NULL,
    participant_id text NOT NULL,
    sequence_id bigint NOT NULL,
    idempotency_key text NOT NULL,
    rail_type text NOT NULL,
    payload_sha256 bytea NOT NULL,
    item_created_at timestamptz NOT NULL,
    attempt_no integer NOT NULL,
    state payment_outbox.outbox_attempt_state NOT NULL,
    claimed_at timestamptz,
    completed_at timestamptz,
    worker_id text,
    error_code text,
    error_message text,
    rail_reference text,
    latency_ms numeric,
    CONSTRAINT payment_outbox_attempts_pkey PRIMARY KEY (outbox_id, attempt_no),
    CONSTRAINT payment_outbox_attempts_attempt_no_positive_check CHECK (attempt_no >= 1),
    CONSTRAINT payment_outbox_attempts_latency_ms_non_negative_check CHECK (latency_ms >= 0)
);

CREATE UNIQUE INDEX payment_outbox_attempts_outbox_id_terminal_key
ON payment_outbox.payment_outbox_attempts (outbox_id)
WHERE state IN ('DISPATCHED', 'FAILED');

-- Once an item has left pending, its idempotency key is found here; unique, so the database
-- itself refuses a second terminal item under one key.
CREATE UNIQUE INDEX payment_outbox_attempts_idempotency_terminal_key
ON payment_outbox.payment_outbox_attempts (instruction_id, idempotency_key)
WHERE state IN ('DISPATCHED', 'FAILED');

COMMENT ON TABLE payment_outbox.payment_outbox_attempts IS
'Append-only ledger: one row per state change of an outbox item (DISPATCHING, DISPATCHED, '
'RETRYABLE, FAILED, ZOMBIE_REQUEUE), attempt_no strictly increasing per item. UPDATE and DELETE '
'are refused for everyone; runtime roles have no TRUNCATE.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempts.payload_sha256 IS
'sha256 of the item''s payload (canonical jsonb text), kept so a reused key can be verified.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempts.item_created_at IS
'When the item was enqueued.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempts.attempt_no IS
'Position of this row in the item''s history, 1, 2, 3, ...; the attempt_no of a DISPATCHING row '
'is the fencing token its completion must present.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempts.claimed_at IS
'When the claim this row belongs to was made.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempts.completed_at IS
'When the claim ended (completion or zombie requeue); NULL on DISPATCHING rows.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempts.worker_id IS
'Worker that held the claim; on a ZOMBIE_REQUEUE row, the worker that went silent.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempts.rail_reference IS
'The rail''s own reference for the dispatched payment, when it gave one.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempts.latency_ms IS
'Milliseconds from claim to this row, on rows that end a claim.';
COMMENT ON INDEX payment_outbox.payment_outbox_attempts_pkey IS
'attempt_no is unique per item: two writers of the same attempt cannot both succeed.';
COMMENT ON INDEX payment_outbox.payment_outbox_attempts_outbox_id_terminal_key IS
'At most one terminal attempt (DISPATCHED or FAILED) per item: no payment completes twice.';
COMMENT ON INDEX payment_outbox.payment_outbox_attempts_idempotency_terminal_key IS
'Idempotency lookups for items that have left pending; at most one terminal item per key.';
