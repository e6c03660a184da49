-- The milliseconds from a claim to the completion that ends it, as the ledger records them.
CREATE OR REPLACE FUNCTION payment_outbox._latency_ms(p_claimed_at timestamptz, p_completed_at timestamptz)
RETURNS numeric
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
RETURN round(greatest(extract(EPOCH FROM p_completed_at - p_claimed_at) * 1000, 0), 3);

COMMENT ON FUNCTION payment_outbox._latency_ms(timestamptz, timestamptz) IS
'Milliseconds from p_claimed_at to p_completed_at, never negative, to 3 decimals: the ledger''s latency_ms, '
'computed from the same completed_at the row records.';

REVOKE ALL ON FUNCTION payment_outbox._latency_ms(timestamptz, timestamptz) FROM PUBLIC;
