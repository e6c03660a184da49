-- The per-participant sequence allocator: gap-free, strictly increasing sequence ids.
CREATE TABLE payment_outbox.participant_outbox_sequences (
    participant_id text NOT NULL,
    next_sequence_id bigint NOT NULL DEFAULT 1,
    CONSTRAINT participant_outbox_sequences_pkey PRIMARY KEY (participant_id),
    CONSTRAINT participant_outbox_sequences_next_sequence_id_positive_check
    CHECK (next_sequence_id >= 1)
);

COMMENT ON TABLE payment_outbox.participant_outbox_sequences IS
'Allocator of per-participant sequence ids. The row is locked by an enqueue that creates an item '
'and advanced in the same transaction, so ids are 1, 2, 3, ... in commit order with no gaps.';
COMMENT ON COLUMN payment_outbox.participant_outbox_sequences.next_sequence_id IS
'The sequence id the next new item of this participant will get.';
COMMENT ON INDEX payment_outbox.participant_outbox_sequences_pkey IS
'One allocator row per participant; the row lock on it serialises item creation per participant.';
