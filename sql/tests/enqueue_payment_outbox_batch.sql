-- Proof: a payment file through outbox_ingest answers item by item as the single call, and a refused file writes nothing.
SET LOCAL ROLE outbox_ingest;

SELECT payment_outbox.enqueue_payment_outbox('file-i', 'file-p1', 'file-known', 'sepa', '{"amount": 1}');

CREATE TEMPORARY TABLE file_rows ON COMMIT DROP AS
SELECT *
FROM payment_outbox.enqueue_payment_outbox_batch($j$[
    {"instruction_id": "file-i", "participant_id": "file-p2", "idempotency_key": "file-a", "rail_type": "sepa", "payload": {"n": 1}},
    {"instruction_id": "file-i", "participant_id": "file-p1", "idempotency_key": "file-b", "rail_type": "sepa", "payload": {"n": 2}},
    {"instruction_id": "file-i", "participant_id": "file-p1", "idempotency_key": "file-known", "rail_type": "sepa", "payload": {"amount": 1}},
    {"instruction_id": "file-i", "participant_id": "file-p2", "idempotency_key": "file-c", "rail_type": "sepa", "payload": {"n": 3}},
    {"instruction_id": "file-i", "participant_id": "file-p2", "idempotency_key": "file-a", "rail_type": "sepa", "payload": {"n": 1}}
]$j$);

SELECT payment_outbox_proof.is(
    (SELECT string_agg(item_no::text, ',' ORDER BY item_no) FROM file_rows), '1,2,3,4,5', 'one row per item, in file order'
);
SELECT payment_outbox_proof.is(
    (SELECT string_agg(sequence_id::text, ',' ORDER BY item_no) FROM file_rows), '1,2,1,2,1',
    'new items of a participant get consecutive ids in file order; the known key keeps its id and burns none'
);
SELECT payment_outbox_proof.ok(
    (
        SELECT a.outbox_id = b.outbox_id FROM file_rows AS a, file_rows AS b
        WHERE a.item_no = 1 AND b.item_no = 5
    ),
    'a key repeated in the file with the same arguments is one item'
);
SELECT payment_outbox_proof.is(
    (
        SELECT count(*) FROM payment_outbox.enqueue_payment_outbox_batch(
            $j$[{"instruction_id": "file-i", "participant_id": "file-p2", "idempotency_key": "file-a", "rail_type": "sepa", "payload": {"n": 1}}]$j$
        ) AS r INNER JOIN file_rows AS f ON r.outbox_id = f.outbox_id AND r.sequence_id = f.sequence_id AND f.item_no = 1
    ),
    1::bigint, 'a replayed file returns the items it created'
);
SELECT payment_outbox_proof.is(
    (SELECT sequence_id FROM payment_outbox.enqueue_payment_outbox('file-i', 'file-p2', 'file-d', 'sepa', '{}')),
    3::bigint, 'the single call continues after the file: no id burnt'
);
SELECT payment_outbox_proof.is(
    (SELECT count(*) FROM payment_outbox.enqueue_payment_outbox_batch('[]')), 0::bigint, 'an empty file is no item'
);

-- _valid_argument is the set-based form of _require_argument: the two must agree.
RESET ROLE;
SELECT
    payment_outbox_proof.ok(
        payment_outbox._valid_argument(a.name, v.value) = NOT payment_outbox_proof.raises(
            format('SELECT payment_outbox._require_argument(%L, %L)', a.name, v.value)
        ),
        format('_valid_argument(%s, %s) agrees with _require_argument', a.name, coalesce(v.value, 'null'))
    )
FROM (VALUES ('instruction_id'), ('participant_id'), ('idempotency_key'), ('rail_type')) AS a (name)
CROSS JOIN (
    VALUES (NULL), (''), (' '), (E'\t'), (E'\u00a0'), (E'\u3000'), ('x'), (repeat('x', 64)), (repeat('x', 65)),
    (repeat('x', 255)), (repeat('x', 256)), (repeat('é', 255))
) AS v (value);
SET LOCAL ROLE outbox_ingest;

CREATE TEMPORARY TABLE before_refusals ON COMMIT DROP AS SELECT payment_outbox_proof.row_counts() AS counts;

SELECT
    payment_outbox_proof.throws_ok(
        format('SELECT * FROM payment_outbox.enqueue_payment_outbox_batch(%L)', f.items), f.sqlstate, f.description
    )
FROM (
    VALUES
    ('{}', 'PO017', 'a file that is not an array is refused'),
    ('[1]', 'PO017', 'an item that is not an object is refused'),
    (
        '[{"instruction_id": "file-i", "participant_id": "file-p9", "idempotency_key": "file-z", "rail_type": "sepa", "payload": {}, "amount": 5}]',
        'PO017', 'an item with a key outside the five is refused'
    ),
    (
        '[{"instruction_id": 7, "participant_id": "file-p9", "idempotency_key": "file-z", "rail_type": "sepa", "payload": {}}]',
        'PO017', 'an argument that is not a string is refused'
    ),
    (
        '[{"instruction_id": "file-i", "participant_id": " ", "idempotency_key": "file-z", "rail_type": "sepa", "payload": {}}]',
        'PO010', 'a blank argument is refused'
    ),
    (
        '[{"instruction_id": "file-i", "participant_id": "file-p9", "idempotency_key": "file-z", "rail_type": "sepa"}]',
        'PO011', 'a missing payload is refused'
    ),
    (
        '[{"instruction_id": "file-i", "participant_id": "file-p9", "idempotency_key": "file-z", "rail_type": "sepa", "payload": {}},
      {"instruction_id": "file-i", "participant_id": "file-p1", "idempotency_key": "file-known", "rail_type": "sepa", "payload": {"amount": 2}}]',
        'PO001', 'a known key with another payload fails the whole file'
    ),
    (
        '[{"instruction_id": "file-i", "participant_id": "file-p9", "idempotency_key": "file-z", "rail_type": "sepa", "payload": {}},
      {"instruction_id": "file-i", "participant_id": "file-p9", "idempotency_key": "file-z", "rail_type": "swift", "payload": {}}]',
        'PO001', 'a key repeated in the file with another rail type fails the whole file'
    )
) AS f (items, sqlstate, description);

SELECT payment_outbox_proof.throws_ok(
    format(
        'SELECT * FROM payment_outbox.enqueue_payment_outbox_batch(%L)',
        (SELECT
            jsonb_agg(jsonb_build_object(
                'instruction_id', 'file-i', 'participant_id', 'file-p9',
                'idempotency_key', 'file-many-' || g, 'rail_type', 'sepa', 'payload', '{}'::jsonb
            ))
        FROM generate_series(1, 50001) AS g)
    ),
    'PO018', 'a file over the item limit is refused'
);

SELECT payment_outbox_proof.is(
    payment_outbox_proof.error_message($q$SELECT * FROM payment_outbox.enqueue_payment_outbox_batch('[
      {"instruction_id": "file-i", "participant_id": "file-p9", "idempotency_key": "file-y", "rail_type": "sepa", "payload": {}},
      {"instruction_id": "file-i", "participant_id": "file-p9", "idempotency_key": "file-z", "rail_type": "sepa", "payload": {}},
      {"instruction_id": "file-i", "participant_id": "file-p1", "idempotency_key": "file-known", "rail_type": "sepa", "payload": {"amount": 2}},
      {"instruction_id": "file-i", "participant_id": "", "idempotency_key": "file-x", "rail_type": "sepa", "payload": {}}
    ]')$q$) LIKE 'payment file item 3: %',
    TRUE, 'the error names the first refused item'
);

SELECT payment_outbox_proof.is(
    payment_outbox_proof.row_counts(), (SELECT counts FROM before_refusals), 'refused files wrote nothing'
);
