-- The most items one batch call (a payment file, a batch completion) may carry.
CREATE OR REPLACE FUNCTION payment_outbox._max_batch_items()
RETURNS integer
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
-- A batch holds its participants' allocator rows and its keys to commit, and its arrays in
-- memory; a larger file is split by the caller, each part in its own call.
RETURN 50000;

COMMENT ON FUNCTION payment_outbox._max_batch_items() IS
'At most 50,000 items per call of enqueue_payment_outbox_batch or complete_outbox_attempts; more '
'is PO018.';

REVOKE ALL ON FUNCTION payment_outbox._max_batch_items() FROM PUBLIC;
