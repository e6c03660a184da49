-- The payload hash becomes the sha256 of the payload's canonical text (functions/_payload_sha256.sql).
-- Rows written before this file hold sha256 of the jsonb text as it was sent. The two are equal
-- for every payload without trailing fractional zeros in a number (1.0, 2.50), so nothing is
-- rewritten (the ledger is append-only anyway): enqueue accepts a repeat whose payload matches
-- either form, or, while the item is pending, equals its payload as jsonb.
COMMENT ON COLUMN payment_outbox.payment_outbox_pending.payload_sha256 IS
'sha256 of the payload''s canonical text (its jsonb text with trailing fractional zeros of numbers '
'removed), so payloads equal as jsonb hash alike; rows enqueued before tables/0012 hold sha256 of '
'the jsonb text, the same value unless a number had trailing zeros. Copied to every ledger row so '
'a reused idempotency key can be checked after the item left this table.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempts.payload_sha256 IS
'sha256 of the item''s payload (canonical text; jsonb text for items enqueued before tables/0012), '
'kept so a reused key can be verified.';
