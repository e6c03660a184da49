-- Proof: every text argument has a documented limit and Unicode white space is blank; nothing overflows.
CREATE TEMPORARY TABLE before_refusals ON COMMIT DROP AS SELECT payment_outbox_proof.row_counts() AS counts;

SET LOCAL ROLE outbox_ingest;
SELECT payment_outbox_proof.is(
    (
        SELECT e.state
        FROM payment_outbox.enqueue_payment_outbox(repeat('i', 255), repeat('p', 255), repeat('k', 255), repeat('r', 64), '{}') AS e
    ),
    'PENDING', 'ids and keys of 255 characters and a rail type of 64 are accepted'
);
CREATE TEMPORARY TABLE accepted ON COMMIT DROP AS SELECT payment_outbox_proof.row_counts() AS counts;

SELECT
    payment_outbox_proof.throws_ok(
        format(
            'SELECT * FROM payment_outbox.enqueue_payment_outbox(%L, %L, %L, %L, %L)',
            CASE WHEN t.argument = 'instruction_id' THEN repeat('i', t.length) ELSE 'lim-i' END,
            CASE WHEN t.argument = 'participant_id' THEN repeat('p', t.length) ELSE 'lim-p' END,
            CASE WHEN t.argument = 'idempotency_key' THEN repeat('k', t.length) ELSE 'lim-k' END,
            CASE WHEN t.argument = 'rail_type' THEN repeat('r', t.length) ELSE 'sepa' END,
            '{}'
        ),
        'PO015', format('a %s of %s characters is refused', t.argument, t.length)
    )
FROM (
    VALUES
    ('instruction_id', 256), ('participant_id', 256), ('idempotency_key', 256), ('rail_type', 65),
    ('idempotency_key', 3000), ('participant_id', 3000), ('instruction_id', 100000)
) AS t (argument, length);

SELECT
    payment_outbox_proof.throws_ok(
        format(
            'SELECT * FROM payment_outbox.enqueue_payment_outbox(%L, %L, %L, %L, %L)',
            'lim-i', 'lim-p', b.key, 'sepa', '{}'
        ),
        'PO010', format('a key made only of %s is blank', b.name)
    )
FROM (
    VALUES
    (E'\u00a0', 'U+00A0 no-break space'), (E'\u2003\u2003', 'U+2003 em space'),
    (E'\u3000', 'U+3000 ideographic space'), (E'\u200b', 'U+200B zero width space'),
    (E'\ufeff', 'U+FEFF byte order mark'), (E'\t\n\r', 'tab, line feed, carriage return'),
    (E'\u0085\u2028', 'U+0085 next line, U+2028 line separator')
) AS b (key, name);
SELECT payment_outbox_proof.is(
    payment_outbox_proof.row_counts(), (SELECT counts FROM accepted), 'refused enqueues wrote nothing'
);

SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.throws_ok(
    format('SELECT * FROM payment_outbox.claim_outbox_batch(%L, 1)', repeat('w', 256)),
    'PO015', 'a worker id of 256 characters is refused'
);
SELECT payment_outbox_proof.throws_ok(
    format('SELECT * FROM payment_outbox.claim_outbox_batch(%L, 1)', E'\u00a0\u2009'),
    'PO010', 'a worker id of Unicode spaces is blank'
);
CREATE TEMPORARY TABLE claimed ON COMMIT DROP AS
SELECT * FROM payment_outbox.claim_outbox_batch(repeat('w', 255), 1);
SELECT payment_outbox_proof.is((SELECT count(*) FROM claimed), 1::bigint, 'a worker id of 255 characters claims');
CREATE TEMPORARY TABLE claimed_counts ON COMMIT DROP AS SELECT payment_outbox_proof.row_counts() AS counts;

SELECT
    payment_outbox_proof.throws_ok(
        format(
            'SELECT * FROM payment_outbox.complete_outbox_attempt(%L, %s, %L, %L, %L, %L, %L)',
            c.outbox_id, c.attempt_no, 'RETRYABLE',
            CASE WHEN t.argument = 'error_code' THEN repeat('c', t.length) END,
            CASE WHEN t.argument = 'error_message' THEN repeat('m', t.length) END,
            CASE WHEN t.argument = 'rail_reference' THEN repeat('r', t.length) END,
            CASE WHEN t.argument = 'worker_id' THEN repeat('w', t.length) ELSE repeat('w', 255) END
        ),
        'PO015', format('a completion''s %s of %s characters is refused', t.argument, t.length)
    )
FROM claimed AS c
CROSS JOIN (
    VALUES
    ('error_code', 65), ('error_message', 4097), ('error_message', 20000000), ('rail_reference', 256),
    ('worker_id', 256)
) AS t (argument, length);

SELECT
    payment_outbox_proof.throws_ok(
        format(
            'SELECT * FROM payment_outbox.complete_outbox_attempt(%L, %s, %L, p_worker_id => %L)',
            c.outbox_id, coalesce(n.attempt_no::text, 'NULL'), 'DISPATCHED', repeat('w', 255)
        ),
        'PO002', format('attempt number %s is stale, never an overflow', coalesce(n.attempt_no::text, 'NULL'))
    )
FROM claimed AS c
CROSS JOIN (VALUES (2147483647), (-2147483648), (0), (NULL)) AS n (attempt_no);
SELECT payment_outbox_proof.is(
    payment_outbox_proof.row_counts(), (SELECT counts FROM claimed_counts), 'refused completions wrote nothing'
);
SELECT payment_outbox_proof.ok(
    (
        SELECT r.state = 'RETRYABLE'
        FROM claimed AS c,
            payment_outbox.complete_outbox_attempt(
                c.outbox_id, c.attempt_no, 'RETRYABLE', repeat('c', 64), repeat('m', 4096), repeat('r', 255),
                repeat('w', 255)
            ) AS r
    ),
    'a completion at every limit is accepted'
);

SET LOCAL ROLE outbox_repair;
SELECT payment_outbox_proof.is(
    (SELECT count(*) FROM payment_outbox.repair_zombie_attempts(2147483647, 2147483647)), 0::bigint,
    'repair with the largest threshold and batch size requeues nothing and does not overflow'
);
SELECT payment_outbox_proof.is(
    (SELECT count(*) FROM payment_outbox.list_stuck_dispatching(2147483647)), 0::bigint,
    'list_stuck_dispatching with the largest threshold lists nothing'
);
SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.is(
    (SELECT count(*) FROM payment_outbox.claim_outbox_batch('lim-w', 2147483647)), 0::bigint,
    'a claim of the largest batch size claims what is due (nothing) and does not overflow'
);

-- item_history by key takes the same ids and keys as enqueue, so the same limits (issue 21: it
-- once named its arguments p_instruction_id and p_idempotency_key, which have no limit).
SET LOCAL ROLE outbox_readonly;
SELECT
    payment_outbox_proof.throws_ok(
        format(
            'SELECT * FROM payment_outbox.item_history(%L, %L)',
            CASE WHEN t.argument = 'instruction_id' THEN repeat('i', t.length) ELSE 'lim-i' END,
            CASE WHEN t.argument = 'idempotency_key' THEN repeat('k', t.length) ELSE 'lim-k' END
        ),
        'PO015', format('item_history by key: a %s of %s characters is refused', t.argument, t.length)
    )
FROM (VALUES ('instruction_id', 256), ('idempotency_key', 256), ('idempotency_key', 100000)) AS t (argument, length);
RESET ROLE;

-- Every argument name a function passes to the limit helpers is one _max_length() knows: an
-- unknown name has no limit, and the check passes anything.
WITH helper_calls AS (
    SELECT
        p.proname AS function_name,
        (regexp_matches(
            pg_catalog.pg_get_functiondef(p.oid), '_(?:require|limit|valid)_argument\(''([^'']*)''', 'g'
        ))[1] AS argument_name
    FROM pg_catalog.pg_proc AS p
    WHERE p.pronamespace = 'payment_outbox'::regnamespace AND p.prokind = 'f'
)

SELECT
    payment_outbox_proof.is(
        coalesce(
            array_agg(DISTINCT c.function_name || ': ' || c.argument_name)
            FILTER (WHERE payment_outbox._max_length(c.argument_name) IS NULL),
            '{}'
        ),
        '{}'::text[], 'every argument name passed to _require_argument, _limit_argument and _valid_argument has a limit'
    )
FROM helper_calls AS c;
