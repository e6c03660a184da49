-- The package's own mutual exclusion: one row per job that must run alone, written and locked by the
-- package's functions only: a job in one transaction locks its row (FOR UPDATE, _lock_package); a
-- run of many transactions (retention, the ledger's conversion) holds a lease on it, its session
-- recorded in the row, free again when that session ends (_take_package_lease). An advisory lock key can be taken by any login (pg_advisory_lock is
-- PUBLIC's), which once let a login outside the package stop retention and partition maintenance
-- (issue 25, item 2); a row of a table no role but the owner can read or lock cannot be.
-- A new table, locked by no one yet: nothing to wait for.
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE TABLE payment_outbox.payment_outbox_locks (
    lock_name text NOT NULL,
    purpose text NOT NULL,
    holder_pid bigint,
    holder_backend_start timestamptz,
    holder_user text,
    holder_application text,
    held_since timestamptz,
    CONSTRAINT payment_outbox_locks_pkey PRIMARY KEY (lock_name)
);

INSERT INTO payment_outbox.payment_outbox_locks (lock_name, purpose) VALUES
('ensure_attempt_partitions', 'one ensure_attempt_partitions() at a time: two would both find a month missing'),
('retention', 'one outbox retention run at a time'),
('convert_ledger', 'one conversion of the ledger to partitions at a time');

-- The table is this transaction's own: no session can hold a lock on it.
-- squawk-ignore require-lock-timeout, require-statement-timeout
COMMENT ON TABLE payment_outbox.payment_outbox_locks IS
'The package''s mutual exclusion: a job that must run alone locks its row (FOR UPDATE, through '
'_lock_package()) or holds a lease on it (_take_package_lease()) for as long as it runs. No role but the owner has a privilege on it, so no login '
'outside the package can take a lock here; a run that finds its row locked names the holder (PO036).';
COMMENT ON COLUMN payment_outbox.payment_outbox_locks.lock_name IS
'The job: ensure_attempt_partitions, retention, convert_ledger.';
COMMENT ON COLUMN payment_outbox.payment_outbox_locks.purpose IS
'What running alone protects.';
COMMENT ON COLUMN payment_outbox.payment_outbox_locks.holder_pid IS
'The backend holding the lease (a run of many transactions); the lease ends with that session.';
COMMENT ON COLUMN payment_outbox.payment_outbox_locks.holder_backend_start IS
'When the holding backend started: a later backend given the same pid does not hold the lease.';
COMMENT ON COLUMN payment_outbox.payment_outbox_locks.holder_user IS
'The login (session_user) of the lease''s holder.';
COMMENT ON COLUMN payment_outbox.payment_outbox_locks.holder_application IS
'The holder''s application_name.';
COMMENT ON COLUMN payment_outbox.payment_outbox_locks.held_since IS
'When the holder took the lease.';
COMMENT ON INDEX payment_outbox.payment_outbox_locks_pkey IS
'One row per job.';

REVOKE ALL ON payment_outbox.payment_outbox_locks FROM PUBLIC;

-- Issue 25, item 6: the comment of the ledger's idempotency index claimed more than it holds since
-- the ledger is partitioned (the same text as _stage_partitioned_ledger gives it). A comment is a
-- catalog change only.
-- squawk-ignore require-lock-timeout, require-statement-timeout
COMMENT ON INDEX payment_outbox.payment_outbox_attempts_idempotency_terminal_key IS
'Idempotency lookups for items that have left pending. Unique with item_created_at (a partitioned '
'table''s unique index holds its partition key), so it does not refuse a second terminal item under '
'one key: the key register keeps a key to one item; check_invariants() names the damage of before 0010.';
