-- Drops the allocator lock helper that took the idempotency key: enqueue registers the key before
-- it waits for the allocator now, so the helper needs only the participant (functions/).
DROP FUNCTION IF EXISTS payment_outbox._lock_participant_allocator(text, text, text);
