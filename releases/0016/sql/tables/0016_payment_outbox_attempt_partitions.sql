-- The ledger's partitions by item creation time, and what retention retired: the registry of both.
-- The ledger itself becomes partitioned outside this transaction: `outbox migrate` runs the
-- conversion (runner/ledger_conversion.py) after it, step by step, each step re-runnable, so a
-- populated ledger is never rewritten nor locked for longer than a short lock_timeout. Until the
-- conversion has run, the ledger is the plain table it was and everything works as before.
CREATE TABLE payment_outbox.payment_outbox_attempt_partitions (
    partition_name text NOT NULL,
    range_from timestamptz,
    range_to timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'attached',
    created_at timestamptz NOT NULL DEFAULT now(),
    items bigint,
    attempts bigint,
    exported_to text,
    retired_at timestamptz,
    retired_by text,
    CONSTRAINT payment_outbox_attempt_partitions_pkey PRIMARY KEY (partition_name),
    CONSTRAINT payment_outbox_attempt_partitions_state_known_check
    CHECK (state IN ('converting', 'attached', 'detaching', 'retired')),
    CONSTRAINT payment_outbox_attempt_partitions_range_ordered_check
    CHECK (range_from IS NULL OR range_from < range_to),
    CONSTRAINT payment_outbox_attempt_partitions_retired_recorded_check
    CHECK ((state = 'retired') = (retired_at IS NOT NULL))
);

-- Per participant, how many sequence ids the items of a retired partition held, and the highest:
-- check_invariants() counts them, so a retired month is not a gap in a participant's sequence.
-- Its foreign key locks only the registry created above in this transaction: no session sees it.
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE TABLE payment_outbox.payment_outbox_retired_sequences (
    partition_name text NOT NULL,
    participant_id text NOT NULL,
    items bigint NOT NULL,
    max_sequence_id bigint NOT NULL,
    CONSTRAINT payment_outbox_retired_sequences_pkey PRIMARY KEY (partition_name, participant_id),
    CONSTRAINT payment_outbox_retired_sequences_partition_name_fkey FOREIGN KEY (partition_name)
    REFERENCES payment_outbox.payment_outbox_attempt_partitions (partition_name),
    CONSTRAINT payment_outbox_retired_sequences_items_positive_check CHECK (items >= 1)
);

COMMENT ON TABLE payment_outbox.payment_outbox_attempt_partitions IS
'Every range partition the ledger has had, by item creation time: attached, being detached by '
'retention, or retired (detached, optionally exported, dropped). Kept after retirement: '
'check_invariants() and enqueue tell a retired range from damage with it. Written only by the '
'package (the conversion, ensure_attempt_partitions(), outbox retention).';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempt_partitions.partition_name IS
'The partition''s table in schema payment_outbox (the name stays after it is dropped).';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempt_partitions.range_from IS
'First item_created_at the partition holds; NULL for no lower bound (MINVALUE: the ledger from '
'before partitioning, attached as one partition).';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempt_partitions.range_to IS
'The partition holds item_created_at below this.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempt_partitions.state IS
'converting (the ledger from before partitioning, while the conversion runs), attached, detaching '
'(retention began; DETACH ... CONCURRENTLY may be pending), retired (dropped).';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempt_partitions.items IS
'Items whose history the partition held, counted when retention began.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempt_partitions.attempts IS
'Ledger rows the partition held, counted when retention began.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempt_partitions.exported_to IS
'The file retention exported the partition''s rows to before dropping it (as the runner named it).';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempt_partitions.retired_at IS
'When retention dropped the partition.';
COMMENT ON COLUMN payment_outbox.payment_outbox_attempt_partitions.retired_by IS
'The login (session_user) that ran the retention that dropped it.';
COMMENT ON INDEX payment_outbox.payment_outbox_attempt_partitions_pkey IS
'One row per partition name.';
COMMENT ON TABLE payment_outbox.payment_outbox_retired_sequences IS
'For each retired partition and participant: how many items (sequence ids) it held and the highest, '
'recorded when retention began; check_invariants() adds them to the ledger''s.';
COMMENT ON COLUMN payment_outbox.payment_outbox_retired_sequences.partition_name IS
'The retired partition (payment_outbox_attempt_partitions).';
COMMENT ON COLUMN payment_outbox.payment_outbox_retired_sequences.items IS
'Items of the participant created in the partition''s range (each held one sequence id).';
COMMENT ON COLUMN payment_outbox.payment_outbox_retired_sequences.max_sequence_id IS
'The highest sequence id among them.';
COMMENT ON INDEX payment_outbox.payment_outbox_retired_sequences_pkey IS
'One row per retired partition and participant.';

REVOKE ALL ON payment_outbox.payment_outbox_attempt_partitions FROM PUBLIC;
REVOKE ALL ON payment_outbox.payment_outbox_retired_sequences FROM PUBLIC;
GRANT SELECT ON payment_outbox.payment_outbox_attempt_partitions TO outbox_operator, outbox_auditor;
GRANT SELECT ON payment_outbox.payment_outbox_retired_sequences TO outbox_operator, outbox_auditor;
