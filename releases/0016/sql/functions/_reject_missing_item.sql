-- _reject_missing_item: the error for a registered key whose item is neither pending nor in the ledger: retired (PO034) or damage (PO004).
CREATE OR REPLACE FUNCTION payment_outbox._reject_missing_item(p_instruction_id text, p_idempotency_key text)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
DECLARE
    v_key payment_outbox.payment_outbox_idempotency_keys%ROWTYPE;
    v_retired record;
BEGIN
    SELECT * INTO v_key
    FROM payment_outbox.payment_outbox_idempotency_keys AS k
    WHERE k.instruction_id = p_instruction_id AND k.idempotency_key = p_idempotency_key;
    -- A key is registered in the statement that creates its item, so registered_at is the item's
    -- creation time: the partition its history lived in.
    SELECT * INTO v_retired
    FROM payment_outbox._retired_attempt_ranges() AS r
    WHERE v_key.registered_at >= r.range_from AND v_key.registered_at < r.range_to;
    IF FOUND THEN
        RAISE EXCEPTION 'idempotency key % of instruction % belongs to item % created %, whose history retention retired',
            p_idempotency_key, p_instruction_id, v_key.outbox_id, v_key.registered_at
            USING ERRCODE = 'PO034',
                  DETAIL = format('The ledger partition %s was retired%s.', v_retired.partition_name,
                                  coalesce(' at ' || v_retired.retired_at, '')),
                  HINT = 'The key was used, and its payment finished, long ago: it never creates a second one. '
                  'A new payment needs a new idempotency key; the operator has the partition''s export if one was made.';
    END IF;
    RAISE EXCEPTION 'idempotency key % of instruction % is registered, but its item is neither pending nor terminal',
        p_idempotency_key, p_instruction_id
        USING ERRCODE = 'PO004',
              HINT = 'The outbox is damaged: check_invariants() names the key (key_without_item or item_lost); '
              'the key cannot be reused for a new item.';
END;
$$;

COMMENT ON FUNCTION payment_outbox._reject_missing_item(text, text) IS
'Raises the error for a registered key with no pending item and no terminal ledger row: PO034 when '
'the key was registered in a range retention retired (the item finished long ago; the key never '
'makes a new item), PO004 otherwise (damage that check_invariants() names).';

REVOKE ALL ON FUNCTION payment_outbox._reject_missing_item(text, text) FROM PUBLIC;
