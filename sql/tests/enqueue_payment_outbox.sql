-- Proof: enqueue through outbox_ingest is idempotent, gap-free, and refuses bad input with nothing written.
SET LOCAL ROLE outbox_ingest;

CREATE TEMPORARY TABLE first_call ON COMMIT DROP AS
SELECT * FROM payment_outbox.enqueue_payment_outbox('proof-i1', 'proof-p1', 'proof-k1', 'sepa', '{"amount": 100}');

SELECT payment_outbox_proof.is(
    (SELECT sequence_id FROM first_call), 1::bigint, 'a new participant''s first item gets sequence id 1'
);
SELECT payment_outbox_proof.is((SELECT state FROM first_call), 'PENDING', 'a new item is PENDING');

SELECT payment_outbox_proof.ok(
    (
        SELECT e.outbox_id = f.outbox_id AND e.sequence_id = f.sequence_id AND e.created_at = f.created_at
        FROM payment_outbox.enqueue_payment_outbox('proof-i1', 'proof-p1', 'proof-k1', 'sepa', '{"amount": 100}') AS e,
            first_call AS f
    ),
    'a repeated call returns the same item'
);
SELECT payment_outbox_proof.ok(
    (
        SELECT e.outbox_id = f.outbox_id
        FROM payment_outbox.enqueue_payment_outbox('proof-i1', 'proof-p1', 'proof-k1', 'sepa', '{ "amount" : 100 }') AS e,
            first_call AS f
    ),
    'the payload is compared as jsonb, so white space does not make a different payment'
);

SELECT payment_outbox_proof.is(
    (SELECT sequence_id FROM payment_outbox.enqueue_payment_outbox('proof-i2', 'proof-p1', 'proof-k2', 'sepa', '{}')),
    2::bigint,
    'the next new item gets the next sequence id: no number burnt by the repeats'
);
SELECT payment_outbox_proof.is(
    (SELECT sequence_id FROM payment_outbox.enqueue_payment_outbox('proof-i3', 'proof-p2', 'proof-k1', 'sepa', '{}')),
    1::bigint,
    'sequence ids are per participant'
);

CREATE TEMPORARY TABLE before_refusals ON COMMIT DROP AS SELECT payment_outbox_proof.row_counts() AS counts;

SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox('proof-i1', 'proof-p1', 'proof-k1', 'sepa', '{"amount": 999}')$q$,
    'PO001', 'the same key with another payload is a conflict'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox('proof-i1', 'proof-p9', 'proof-k1', 'sepa', '{"amount": 100}')$q$,
    'PO001', 'the same key with another participant is a conflict'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox('proof-i1', 'proof-p1', 'proof-k1', 'swift', '{"amount": 100}')$q$,
    'PO001', 'the same key with another rail type is a conflict'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox(NULL, 'proof-p1', 'proof-k9', 'sepa', '{}')$q$,
    'PO010', 'a null instruction id is refused'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox('proof-i9', '', 'proof-k9', 'sepa', '{}')$q$,
    'PO010', 'an empty participant id is refused'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox('proof-i9', 'proof-p1', '  ', 'sepa', '{}')$q$,
    'PO010', 'a blank idempotency key is refused'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox('proof-i9', 'proof-p1', 'proof-k9', NULL, '{}')$q$,
    'PO010', 'a null rail type is refused'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox('proof-i9', 'proof-p1', 'proof-k9', 'sepa', '[1, 2]')$q$,
    'PO011', 'a payload that is an array is refused'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox('proof-i9', 'proof-p1', 'proof-k9', 'sepa', NULL)$q$,
    'PO011', 'a null payload is refused'
);
SELECT payment_outbox_proof.is(
    payment_outbox_proof.row_counts(), (SELECT counts FROM before_refusals), 'refused calls wrote nothing'
);

RESET ROLE;
SELECT payment_outbox_proof.is(
    (
        SELECT next_sequence_id FROM payment_outbox.participant_outbox_sequences
        WHERE participant_id = 'proof-p1'
    ),
    3::bigint,
    'the allocator stands at the next free id after refusals'
);
