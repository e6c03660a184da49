-- Proof: a payload is the same payment when it is equal as jsonb, before and after its item is terminal.
SET LOCAL ROLE outbox_ingest;
CREATE TEMPORARY TABLE first_call ON COMMIT DROP AS
SELECT * FROM payment_outbox.enqueue_payment_outbox(
    'eq-i1', 'eq-p', 'eq-k1', 'sepa', '{"amount": 1.0, "lines": [2.50, {"fee": 0.10}], "note": "1.0"}'
);

SELECT payment_outbox_proof.is(
    (
        SELECT e.outbox_id
        FROM payment_outbox.enqueue_payment_outbox(
            'eq-i1', 'eq-p', 'eq-k1', 'sepa', '{"note": "1.0", "lines": [2.5, {"fee": 0.1000}], "amount": 1.00}'
        ) AS e
    ),
    (SELECT outbox_id FROM first_call),
    'numbers re-serialised with another scale are the same payload (jsonb equality)'
);
SELECT payment_outbox_proof.is(
    (
        SELECT e.outbox_id
        FROM payment_outbox.enqueue_payment_outbox(
            'eq-i1', 'eq-p', 'eq-k1', 'sepa', '{"amount": 10e-1, "lines": [25E-1, {"fee": 1e-1}], "note": "1.0"}'
        ) AS e
    ),
    (SELECT outbox_id FROM first_call),
    'numbers in exponent notation are the same payload'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox(
        'eq-i1', 'eq-p', 'eq-k1', 'sepa', '{"amount": 1.0, "lines": [2.50, {"fee": 0.10}], "note": "1.00"}')$q$,
    'PO001', 'a string is compared as it is written: "1.0" and "1.00" differ'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox(
        'eq-i1', 'eq-p', 'eq-k1', 'sepa', '{"amount": 1.01, "lines": [2.50, {"fee": 0.10}], "note": "1.0"}')$q$,
    'PO001', 'another amount is another payment'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox(
        'eq-i1', 'eq-p', 'eq-k1', 'sepa', '{"amount": 1.0, "lines": [{"fee": 0.10}, 2.50], "note": "1.0"}')$q$,
    'PO001', 'array order matters, as in jsonb'
);

-- The same after the item has left pending: only its hash is left to compare with.
SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.is(
    (
        SELECT c.state::text
        FROM payment_outbox.claim_outbox_batch('eq-worker', 1) AS b,
            payment_outbox.complete_outbox_attempt(b.outbox_id, b.attempt_no, 'DISPATCHED', p_worker_id => 'eq-worker') AS c
    ),
    'DISPATCHED', 'the item is dispatched'
);
SET LOCAL ROLE outbox_ingest;
SELECT payment_outbox_proof.is(
    (
        SELECT e.outbox_id::text || ' ' || e.state
        FROM payment_outbox.enqueue_payment_outbox(
            'eq-i1', 'eq-p', 'eq-k1', 'sepa', '{"amount": 1.000, "lines": [2.5, {"fee": 0.1}], "note": "1.0"}'
        ) AS e
    ),
    (SELECT outbox_id::text || ' DISPATCHED' FROM first_call),
    'a terminal item is found by a payload equal as jsonb'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox(
        'eq-i1', 'eq-p', 'eq-k1', 'sepa', '{"amount": 1.1, "lines": [2.5, {"fee": 0.1}], "note": "1.0"}')$q$,
    'PO001', 'a terminal item refuses another payload'
);

-- Items enqueued before the canonical hash: their rows hold sha256 of the jsonb text as it was.
RESET ROLE;
INSERT INTO payment_outbox.participant_outbox_sequences (participant_id, next_sequence_id) VALUES ('eq-legacy', 3);
INSERT INTO payment_outbox.payment_outbox_idempotency_keys (instruction_id, idempotency_key, outbox_id)
VALUES
('eq-i2', 'eq-k2', '00000000-0000-4000-8000-0000000000e2'),
('eq-i3', 'eq-k3', '00000000-0000-4000-8000-0000000000e3');
INSERT INTO payment_outbox.payment_outbox_attempts (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload_sha256, item_created_at, attempt_no, state, claimed_at, worker_id
)
SELECT
    v.outbox_id::uuid AS outbox_id,
    v.instruction_id,
    'eq-legacy' AS participant_id,
    v.sequence_id,
    v.idempotency_key,
    'sepa' AS rail_type,
    sha256(convert_to(v.payload::jsonb::text, 'UTF8')) AS payload_sha256,
    now() AS item_created_at,
    a.attempt_no,
    a.state::payment_outbox.outbox_attempt_state AS state,
    now() AS claimed_at,
    'eq-old-worker' AS worker_id
FROM (
    VALUES
    ('00000000-0000-4000-8000-0000000000e2', 'eq-i2', 1, 'eq-k2', '{"amount": 5}'),
    ('00000000-0000-4000-8000-0000000000e3', 'eq-i3', 2, 'eq-k3', '{"amount": 5.0}')
) AS v (outbox_id, instruction_id, sequence_id, idempotency_key, payload)
CROSS JOIN (VALUES (1, 'DISPATCHING'), (2, 'DISPATCHED')) AS a (attempt_no, state);

SET LOCAL ROLE outbox_ingest;
SELECT payment_outbox_proof.is(
    (SELECT e.state FROM payment_outbox.enqueue_payment_outbox('eq-i2', 'eq-legacy', 'eq-k2', 'sepa', '{"amount": 5.00}') AS e),
    'DISPATCHED', 'an earlier item whose payload held no trailing zeros matches every equal payload'
);
SELECT payment_outbox_proof.is(
    (SELECT e.state FROM payment_outbox.enqueue_payment_outbox('eq-i3', 'eq-legacy', 'eq-k3', 'sepa', '{"amount": 5.0}') AS e),
    'DISPATCHED', 'an earlier item matches its payload as it was sent'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox('eq-i3', 'eq-legacy', 'eq-k3', 'sepa', '{"amount": 5.00}')$q$,
    'PO001', 'an earlier terminal item sent with 5.0 cannot be told from 5.00 any more: refused, never guessed'
);

RESET ROLE;
UPDATE payment_outbox.participant_outbox_sequences SET next_sequence_id = 4
WHERE participant_id = 'eq-legacy';
INSERT INTO payment_outbox.payment_outbox_idempotency_keys (instruction_id, idempotency_key, outbox_id)
VALUES ('eq-i4', 'eq-k4', '00000000-0000-4000-8000-0000000000e4');
INSERT INTO payment_outbox.payment_outbox_pending (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload, payload_sha256
)
VALUES (
    '00000000-0000-4000-8000-0000000000e4', 'eq-i4', 'eq-legacy', 3, 'eq-k4', 'sepa', '{"amount": 7.0}',
    sha256(convert_to('{"amount": 7.0}'::jsonb::text, 'UTF8'))
);
SET LOCAL ROLE outbox_ingest;
SELECT payment_outbox_proof.is(
    (SELECT e.outbox_id FROM payment_outbox.enqueue_payment_outbox('eq-i4', 'eq-legacy', 'eq-k4', 'sepa', '{"amount": 7.00}') AS e),
    '00000000-0000-4000-8000-0000000000e4'::uuid,
    'an earlier item still pending is compared as jsonb: 7.0 and 7.00 are one payment'
);

-- A payment file judges a repeat as the single call does: the earlier items above, sent again in a
-- file, get the same answers.
SELECT payment_outbox_proof.is(
    (
        SELECT b.outbox_id
        FROM payment_outbox.enqueue_payment_outbox_batch(
            '[{"instruction_id": "eq-i4", "participant_id": "eq-legacy", "idempotency_key": "eq-k4",
               "rail_type": "sepa", "payload": {"amount": 7.00}}]'
        ) AS b
    ),
    '00000000-0000-4000-8000-0000000000e4'::uuid,
    'in a payment file too, an earlier item still pending is compared as jsonb: 7.0 and 7.00 are one payment'
);
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(b.state, ' ' ORDER BY b.item_no)
        FROM payment_outbox.enqueue_payment_outbox_batch(
            '[{"instruction_id": "eq-i2", "participant_id": "eq-legacy", "idempotency_key": "eq-k2",
               "rail_type": "sepa", "payload": {"amount": 5.00}},
              {"instruction_id": "eq-i3", "participant_id": "eq-legacy", "idempotency_key": "eq-k3",
               "rail_type": "sepa", "payload": {"amount": 5.0}}]'
        ) AS b
    ),
    'DISPATCHED DISPATCHED',
    'in a payment file, earlier terminal items match as they do in the single call'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox_batch(
        '[{"instruction_id": "eq-i3", "participant_id": "eq-legacy", "idempotency_key": "eq-k3",
           "rail_type": "sepa", "payload": {"amount": 5.00}}]')$q$,
    'PO001', 'in a payment file, an earlier terminal item sent with 5.0 is refused 5.00, as in the single call'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SELECT * FROM payment_outbox.enqueue_payment_outbox_batch(
        '[{"instruction_id": "eq-i4", "participant_id": "eq-legacy", "idempotency_key": "eq-k4",
           "rail_type": "sepa", "payload": {"amount": 7.01}}]')$q$,
    'PO001', 'in a payment file, an earlier pending item refuses another amount'
);
