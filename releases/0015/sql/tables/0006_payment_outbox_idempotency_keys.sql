-- The permanent register of idempotency keys: one row per key, kept after the item leaves pending.
CREATE TABLE payment_outbox.payment_outbox_idempotency_keys (
    instruction_id text NOT NULL,
    idempotency_key text NOT NULL,
    outbox_id uuid NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_outbox_idempotency_keys_pkey PRIMARY KEY (instruction_id, idempotency_key)
);

-- Until this table, concurrent creators of one key met at a unique key on the pending table,
-- which only holds live items. An enqueue whose lookup missed a key could then insert a second
-- item for it after the first had been created, dispatched and completed meanwhile (it had left
-- pending, so nothing conflicted): a double payment. Creators now meet here, where the key
-- stays for good, whatever happened to its item; at REPEATABLE READ or SERIALIZABLE a key
-- registered after the caller's snapshot fails the insert with 40001. The unique key on pending
-- is redundant with it and goes; the ledger keeps its own on terminal rows.
CREATE FUNCTION payment_outbox._reject_key_register_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'payment_outbox_idempotency_keys is append-only: % is not allowed', tg_op
        USING ERRCODE = 'PO020',
              HINT = 'An idempotency key, once used, belongs to its item for good.';
END;
$$;

CREATE TRIGGER payment_outbox_idempotency_keys_append_only
BEFORE UPDATE OR DELETE ON payment_outbox.payment_outbox_idempotency_keys
FOR EACH STATEMENT EXECUTE FUNCTION payment_outbox._reject_key_register_change();

-- An upgrade registers the keys of the items that exist already: live ones, then terminal ones.
INSERT INTO payment_outbox.payment_outbox_idempotency_keys (
    instruction_id, idempotency_key, outbox_id, registered_at
)
SELECT
    p.instruction_id,
    p.idempotency_key,
    p.outbox_id,
    p.created_at
FROM payment_outbox.payment_outbox_pending AS p
UNION ALL
SELECT
    a.instruction_id,
    a.idempotency_key,
    a.outbox_id,
    a.item_created_at
FROM payment_outbox.payment_outbox_attempts AS a
WHERE a.state IN ('DISPATCHED', 'FAILED')
ON CONFLICT ON CONSTRAINT payment_outbox_idempotency_keys_pkey DO NOTHING;

ALTER TABLE payment_outbox.payment_outbox_pending
DROP CONSTRAINT payment_outbox_pending_instruction_id_idempotency_key_key;

COMMENT ON TABLE payment_outbox.payment_outbox_idempotency_keys IS
'Every idempotency key ever enqueued, with the item it created; never updated or deleted. '
'Enqueue registers a new key in the same statement that inserts the item, and creates the item '
'only when the key is new here, so one key never creates two items, even after the first has '
'left pending. Enqueue looks keys up here.';
COMMENT ON COLUMN payment_outbox.payment_outbox_idempotency_keys.outbox_id IS
'The item the key created.';
COMMENT ON COLUMN payment_outbox.payment_outbox_idempotency_keys.registered_at IS
'When the key was first enqueued.';
COMMENT ON INDEX payment_outbox.payment_outbox_idempotency_keys_pkey IS
'One item per idempotency key for all time; concurrent creators of one key meet here.';
COMMENT ON FUNCTION payment_outbox._reject_key_register_change() IS
'Trigger function that refuses every UPDATE and DELETE on payment_outbox_idempotency_keys.';
COMMENT ON TRIGGER payment_outbox_idempotency_keys_append_only
ON payment_outbox.payment_outbox_idempotency_keys IS
'Refuses UPDATE and DELETE on the key register for everyone.';

REVOKE ALL ON FUNCTION payment_outbox._reject_key_register_change() FROM PUBLIC;
REVOKE ALL ON payment_outbox.payment_outbox_idempotency_keys FROM PUBLIC;
