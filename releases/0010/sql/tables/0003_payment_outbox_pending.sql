-- The hot queue: one row per outbox item that has not reached a terminal state.
CREATE TABLE payment_outbox.payment_outbox_pending (
    outbox_id uuid NOT NULL DEFAULT gen_random_uuid(),
    instruction_id text NOT NULL,
    participant_id text NOT NULL,
    sequence_id bigint NOT NULL,
    idempotency_key text NOT NULL,
    rail_type text NOT NULL,
    payload jsonb NOT NULL,
    payload_sha256 bytea NOT NULL,
    attempt_count integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    attempt_no integer,
    worker_id text,
    claimed_at timestamptz,
    CONSTRAINT payment_outbox_pending_pkey PRIMARY KEY (outbox_id),
    CONSTRAINT payment_outbox_pending_instruction_id_idempotency_key_key
    UNIQUE (instruction_id, idempotency_key),
    CONSTRAINT payment_outbox_pending_participant_id_sequence_id_key
    UNIQUE (participant_id, sequence_id),
    CONSTRAINT payment_outbox_pending_payload_is_object_check
    CHECK (jsonb_typeof(payload) = 'object'),
    CONSTRAINT payment_outbox_pending_sequence_id_positive_check
    CHECK (sequence_id >= 1),
    CONSTRAINT payment_outbox_pending_attempt_count_non_negative_check
    CHECK (attempt_count >= 0),
    CONSTRAINT payment_outbox_pending_claim_all_or_nothing_check
    CHECK (num_nulls(attempt_no, worker_id, claimed_at) IN (0, 3)),
    CONSTRAINT payment_outbox_pending_claim_is_latest_attempt_check
    CHECK (attempt_no IS NULL OR attempt_no = attempt_count)
);

-- Claims read due, unclaimed rows oldest first; the partial index holds exactly those.
CREATE INDEX payment_outbox_pending_next_attempt_at_due_idx
ON payment_outbox.payment_outbox_pending (next_attempt_at)
WHERE attempt_no IS NULL;

-- Repair reads in-flight rows by claim age, so its cost follows the number of in-flight
-- items and never the size of the ledger.
CREATE INDEX payment_outbox_pending_claimed_at_in_flight_idx
ON payment_outbox.payment_outbox_pending (claimed_at)
WHERE attempt_no IS NOT NULL;

COMMENT ON TABLE payment_outbox.payment_outbox_pending IS
'The hot queue: every outbox item that is not yet terminal (DISPATCHED or FAILED), with the state '
'of its current claim. Written only through the payment_outbox API functions.';
COMMENT ON COLUMN payment_outbox.payment_outbox_pending.payload IS
'The payment instruction sent to the rail; always a JSON object.';
COMMENT ON COLUMN payment_outbox.payment_outbox_pending.payload_sha256 IS
'sha256 of the payload''s canonical jsonb text; copied to every ledger row so that a reused '
'idempotency key can be checked against the original payload after the item left this table.';
COMMENT ON COLUMN payment_outbox.payment_outbox_pending.attempt_count IS
'attempt_no of the item''s latest ledger row (0 before the first claim). Every state change '
'takes a number, so a dispatch that ends RETRYABLE uses two.';
COMMENT ON COLUMN payment_outbox.payment_outbox_pending.next_attempt_at IS
'The item is not claimed before this time (retry backoff).';
COMMENT ON COLUMN payment_outbox.payment_outbox_pending.attempt_no IS
'attempt_no of the DISPATCHING ledger row of the current claim: the fencing token a completion '
'must present. NULL when the item is not in flight.';
COMMENT ON COLUMN payment_outbox.payment_outbox_pending.worker_id IS
'Worker holding the current claim; NULL when the item is not in flight.';
COMMENT ON COLUMN payment_outbox.payment_outbox_pending.claimed_at IS
'When the current claim was made; NULL when the item is not in flight.';
COMMENT ON INDEX payment_outbox.payment_outbox_pending_pkey IS
'Completion and repair find an item by outbox_id.';
COMMENT ON INDEX payment_outbox.payment_outbox_pending_instruction_id_idempotency_key_key IS
'One live item per idempotency key; concurrent creators of one key meet here.';
COMMENT ON INDEX payment_outbox.payment_outbox_pending_participant_id_sequence_id_key IS
'No two live items of a participant share a sequence id.';
COMMENT ON INDEX payment_outbox.payment_outbox_pending_next_attempt_at_due_idx IS
'Due, unclaimed items in due order: the claim path.';
COMMENT ON INDEX payment_outbox.payment_outbox_pending_claimed_at_in_flight_idx IS
'In-flight items by claim age: the repair path and the stuck-dispatching gauge.';
