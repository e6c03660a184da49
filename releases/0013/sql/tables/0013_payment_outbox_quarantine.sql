-- Quarantine: an item whose outcome is unknown or whose retries are exhausted waits for a person.
-- Until now a zombie at the maximum attempt count, and a RETRYABLE completion there, were recorded
-- FAILED by the package itself, though the payment may have gone out. They now enter QUARANTINED:
-- still in pending, never due (next_attempt_at = 'infinity', so the claim's predicate and its
-- partial index pass them by), until an operator releases them (RELEASED: due again, a fresh
-- attempt budget counted from attempt_base) or fails them (FAILED, with actor and reason).
--
-- Nothing is moved: items already terminal stay as they are, and no pending item is quarantined
-- by the upgrade. The new enum values are only named inside plpgsql bodies and in text
-- comparisons, never in this transaction (a value added by ALTER TYPE ... ADD VALUE cannot be used
-- before its transaction commits, and outbox migrate runs every file in one).
--
-- Locks: the ALTER TABLEs take ACCESS EXCLUSIVE on pending, then on the ledger, the order every
-- writer takes them in; outbox migrate bounds each wait with its lock_timeout. The constraints are
-- checked under that lock in the same transaction: pending holds only live items, and the new
-- columns are NULL or 0 in every existing row. Nothing here reads a table before its lock.

-- squawk-ignore require-lock-timeout, require-statement-timeout, require-enum-value-ordering
ALTER TYPE payment_outbox.outbox_attempt_state ADD VALUE IF NOT EXISTS 'QUARANTINED' AFTER 'ZOMBIE_REQUEUE';
-- squawk-ignore require-lock-timeout, require-statement-timeout, require-enum-value-ordering
ALTER TYPE payment_outbox.outbox_attempt_state ADD VALUE IF NOT EXISTS 'RELEASED' AFTER 'QUARANTINED';

COMMENT ON TYPE payment_outbox.outbox_attempt_state IS
'State recorded by one row of payment_outbox_attempts. DISPATCHED and FAILED are terminal. '
'QUARANTINED (retries exhausted, or a zombie at the maximum attempt count: the outcome may be '
'unknown) waits for an operator; RELEASED is an operator making a quarantined item due again.';

-- squawk-ignore require-lock-timeout, require-statement-timeout
ALTER TABLE payment_outbox.payment_outbox_pending
ADD COLUMN quarantined_at timestamptz,
ADD COLUMN quarantine_reason text,
-- An attempt number, compared with the integer attempt numbers (as attempt_count is).
-- squawk-ignore prefer-bigint-over-int
ADD COLUMN attempt_base integer NOT NULL DEFAULT 0;

-- Checked at once, not NOT VALID then VALIDATE: the ADD COLUMN above already holds ACCESS
-- EXCLUSIVE on pending until this transaction ends, so a separate validation would block nothing
-- less; the scan reads only the live items of the hot queue.
-- squawk-ignore require-lock-timeout, require-statement-timeout
ALTER TABLE payment_outbox.payment_outbox_pending
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT payment_outbox_pending_quarantine_all_or_nothing_check
CHECK (num_nulls(quarantined_at, quarantine_reason) IN (0, 2)),
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT payment_outbox_pending_quarantined_never_due_check
CHECK (quarantined_at IS NULL OR (attempt_no IS NULL AND next_attempt_at = 'infinity')),
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT payment_outbox_pending_attempt_base_in_range_check
CHECK (attempt_base BETWEEN 0 AND attempt_count);

-- squawk-ignore require-lock-timeout, require-statement-timeout
ALTER TABLE payment_outbox.payment_outbox_attempts
ADD COLUMN actor text,
ADD COLUMN reason text;

COMMENT ON COLUMN payment_outbox.payment_outbox_pending.quarantined_at IS
'When the item entered QUARANTINED; NULL unless it is quarantined. A quarantined item is never '
'due (next_attempt_at is infinity) and never claimed, until release_quarantined or fail_quarantined.';
COMMENT ON COLUMN payment_outbox.payment_outbox_pending.quarantine_reason IS
'Why the item is quarantined (retries exhausted, or a zombie claim whose outcome is unknown); NULL '
'unless it is quarantined.';
COMMENT ON COLUMN payment_outbox.payment_outbox_pending.attempt_base IS
'attempt_no of the item''s latest RELEASED ledger row (0 if never released): the attempt budget '
'(_max_attempt_count) is counted from here, while attempt_no keeps increasing.';
COMMENT ON CONSTRAINT payment_outbox_pending_quarantine_all_or_nothing_check
ON payment_outbox.payment_outbox_pending IS
'A quarantined item has both its time and its reason; any other item neither.';
COMMENT ON CONSTRAINT payment_outbox_pending_quarantined_never_due_check
ON payment_outbox.payment_outbox_pending IS
'A quarantined item holds no claim and is never due: the claim cannot reach it.';
COMMENT ON CONSTRAINT payment_outbox_pending_attempt_base_in_range_check
ON payment_outbox.payment_outbox_pending IS
'The attempt base is an attempt the item has already had.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempts.actor IS
'Who made an operator''s change (RELEASED, or FAILED by fail_quarantined), as the operator named '
'themselves; NULL for changes made by workers and repair.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempts.reason IS
'Why: the operator''s reason on RELEASED and operator FAILED rows, the quarantine reason on '
'QUARANTINED rows; NULL otherwise.';
COMMENT ON COLUMN payment_outbox.payment_outbox_settings.max_attempt_count IS
'The number of attempts, counted from the item''s creation or its latest release, at which a '
'RETRYABLE completion or a zombie requeue is recorded QUARANTINED instead (2 to 1000).';
