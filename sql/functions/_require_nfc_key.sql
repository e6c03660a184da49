-- _require_nfc_key: refuses (PO037) a new key whose instruction_id or idempotency_key is not in Unicode NFC.
CREATE OR REPLACE FUNCTION payment_outbox._require_nfc_key(p_instruction_id text, p_idempotency_key text)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
DECLARE
    v_field text;
BEGIN
    -- Keys are compared byte for byte: the NFC and NFD forms of one text would be two keys, two
    -- payments. Refused rather than normalized: normalizing would change a key silently, and a
    -- repeat of a key stored before in another form would miss its item.
    IF pg_catalog.getdatabaseencoding() <> 'UTF8'
        OR p_instruction_id IS NFC NORMALIZED AND p_idempotency_key IS NFC NORMALIZED THEN
        RETURN;
    END IF;
    v_field := CASE WHEN p_instruction_id IS NFC NORMALIZED THEN 'idempotency_key' ELSE 'instruction_id' END;
    RAISE EXCEPTION 'argument % is not in Unicode normalization form NFC', v_field
        USING ERRCODE = 'PO037',
              HINT = 'Normalize keys to NFC before enqueueing (Python: unicodedata.normalize("NFC", key)); one text in two forms would be two keys.';
END;
$$;

COMMENT ON FUNCTION payment_outbox._require_nfc_key(text, text) IS
'Raises PO037 naming instruction_id or idempotency_key when it is not in Unicode NFC. Called for new '
'keys only: a key registered before (in any form) still repeats. In a database not encoded in UTF8, '
'where PostgreSQL does not normalize, keys stay bytes and nothing is refused. Owner only.';

REVOKE ALL ON FUNCTION payment_outbox._require_nfc_key(text, text) FROM PUBLIC;
