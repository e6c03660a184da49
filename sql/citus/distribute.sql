-- Distributes an installed package on a Citus coordinator, by participant_id (outbox migrate --citus).
-- Applied once, in one transaction, by the package owner, after the single-node package is
-- installed and before any item exists: the queue, the ledger, the key register and the
-- allocators become distributed tables co-located by participant_id, so one participant's rows of
-- all four live in one shard group on one node; the small tables every node reads become reference
-- tables (a copy on every node). Citus requires every unique key of a distributed table to hold
-- its distribution column, so the keys that lacked participant_id take it, and the key register,
-- which had no participant, gets one: an idempotency key is scoped to its participant on Citus
-- (docs/scale-out.md says what that changes).

-- Nothing is moved: the runner refuses a database that holds items before this file runs.
-- squawk-ignore require-lock-timeout, require-statement-timeout
LOCK TABLE payment_outbox.payment_outbox_idempotency_keys IN ACCESS EXCLUSIVE MODE;
LOCK TABLE payment_outbox.payment_outbox_pending IN ACCESS EXCLUSIVE MODE;
LOCK TABLE payment_outbox.payment_outbox_attempts IN ACCESS EXCLUSIVE MODE;
LOCK TABLE payment_outbox.participant_outbox_sequences IN ACCESS EXCLUSIVE MODE;

ALTER TABLE payment_outbox.payment_outbox_idempotency_keys
ADD COLUMN participant_id text NOT NULL,
DROP CONSTRAINT payment_outbox_idempotency_keys_pkey,
ADD CONSTRAINT payment_outbox_idempotency_keys_pkey PRIMARY KEY (participant_id, instruction_id, idempotency_key);

COMMENT ON COLUMN payment_outbox.payment_outbox_idempotency_keys.participant_id IS
'The participant whose item the key created: on Citus the register is distributed by it, and a '
'key is unique within its participant.';
COMMENT ON INDEX payment_outbox.payment_outbox_idempotency_keys_pkey IS
'One item per idempotency key and participant for all time; concurrent creators of one key meet here.';

-- outbox_id first: completion, repair and the claim reach a row by its id within a shard.
ALTER TABLE payment_outbox.payment_outbox_pending
DROP CONSTRAINT payment_outbox_pending_pkey,
ADD CONSTRAINT payment_outbox_pending_pkey PRIMARY KEY (outbox_id, participant_id);

COMMENT ON INDEX payment_outbox.payment_outbox_pending_pkey IS
'Completion and repair find an item by outbox_id (and its participant, the distribution column).';

-- The ledger is partitioned by item_created_at (tables/0016): its keys hold that column already;
-- each now holds participant_id too. Dropping a parent's key drops its partitions' with it.
ALTER TABLE payment_outbox.payment_outbox_attempts
DROP CONSTRAINT payment_outbox_attempts_pkey,
ADD CONSTRAINT payment_outbox_attempts_pkey PRIMARY KEY (outbox_id, attempt_no, item_created_at, participant_id);

DROP INDEX payment_outbox.payment_outbox_attempts_outbox_id_terminal_key;
CREATE UNIQUE INDEX payment_outbox_attempts_outbox_id_terminal_key
ON payment_outbox.payment_outbox_attempts (outbox_id, item_created_at, participant_id)
WHERE state IN ('DISPATCHED', 'FAILED');

DROP INDEX payment_outbox.payment_outbox_attempts_idempotency_terminal_key;
CREATE UNIQUE INDEX payment_outbox_attempts_idempotency_terminal_key
ON payment_outbox.payment_outbox_attempts (participant_id, instruction_id, idempotency_key, item_created_at)
WHERE state IN ('DISPATCHED', 'FAILED');

COMMENT ON INDEX payment_outbox.payment_outbox_attempts_pkey IS
'attempt_no is unique per item: two writers of the same attempt cannot both succeed.';
COMMENT ON INDEX payment_outbox.payment_outbox_attempts_outbox_id_terminal_key IS
'At most one terminal attempt (DISPATCHED or FAILED) per item: no payment completes twice.';
COMMENT ON INDEX payment_outbox.payment_outbox_attempts_idempotency_terminal_key IS
'Idempotency lookups for items that have left pending; at most one terminal item per key and participant.';

-- Reference tables: one copy on every node, written through two-phase commit on all of them.
SELECT create_reference_table('payment_outbox.payment_outbox_settings');
SELECT create_reference_table('payment_outbox.payment_outbox_settings_history');
SELECT create_reference_table('payment_outbox.payment_outbox_rails');
SELECT create_reference_table('payment_outbox.payment_outbox_rail_history');
SELECT create_reference_table('payment_outbox.payment_outbox_attempt_partitions');
SELECT create_reference_table('payment_outbox.payment_outbox_retired_sequences');
SELECT create_reference_table('payment_outbox.payment_outbox_key_conflicts');
-- The package's own locks (tables/0017): one row per job, locked by the owner's jobs wherever they run.
SELECT create_reference_table('payment_outbox.payment_outbox_locks');

-- The allocators first: the others are co-located with it, shard for shard.
SELECT create_distributed_table('payment_outbox.participant_outbox_sequences', 'participant_id');
SELECT create_distributed_table(
    'payment_outbox.payment_outbox_pending', 'participant_id',
    colocate_with => 'payment_outbox.participant_outbox_sequences'
);
SELECT create_distributed_table(
    'payment_outbox.payment_outbox_attempts', 'participant_id',
    colocate_with => 'payment_outbox.participant_outbox_sequences'
);
SELECT create_distributed_table(
    'payment_outbox.payment_outbox_idempotency_keys', 'participant_id',
    colocate_with => 'payment_outbox.participant_outbox_sequences'
);

-- Buckets: one per shard of the co-location group. A claim or a repair takes a bucket's key,
-- a value that hashes into that shard, and Citus delegates the call to the node holding it, where
-- it reads that shard alone (functions/claim_outbox_bucket.sql): no statement spans shards, so no
-- SKIP LOCKED ever runs across them. Filled by _refresh_outbox_buckets() after every change of the
-- shards (install, split); a reference table, read on every node.
CREATE TABLE payment_outbox.payment_outbox_buckets (
    bucket integer NOT NULL,
    bucket_key text NOT NULL,
    shard_index integer NOT NULL,
    CONSTRAINT payment_outbox_buckets_pkey PRIMARY KEY (bucket),
    CONSTRAINT payment_outbox_buckets_bucket_key_key UNIQUE (bucket_key)
);

COMMENT ON TABLE payment_outbox.payment_outbox_buckets IS
'On Citus: the claim buckets, one per shard of the participants'' co-location group, each with a key '
'that hashes into its shard (claim_outbox_bucket and repair_zombie_bucket take it).';
COMMENT ON COLUMN payment_outbox.payment_outbox_buckets.bucket IS
'0, 1, 2, ...: the bucket''s number, in shard hash order.';
COMMENT ON COLUMN payment_outbox.payment_outbox_buckets.bucket_key IS
'A value of the distribution column''s type that hashes into the bucket''s shard: Citus routes a call by it.';
COMMENT ON COLUMN payment_outbox.payment_outbox_buckets.shard_index IS
'The shard''s position in the co-location group (pg_dist_shard order).';
COMMENT ON INDEX payment_outbox.payment_outbox_buckets_pkey IS
'One row per bucket.';
COMMENT ON INDEX payment_outbox.payment_outbox_buckets_bucket_key_key IS
'A key routes to one bucket.';

REVOKE ALL ON payment_outbox.payment_outbox_buckets FROM PUBLIC;
SELECT create_reference_table('payment_outbox.payment_outbox_buckets');
