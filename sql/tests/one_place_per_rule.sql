-- Proof: the ledger row, the attempt limit and payload equality each have one place, inlined into every caller.
-- Callers append _ledger_row's row by position (INSERT ... SELECT l.*): its columns must be the
-- ledger's, names and types, in the ledger's order.
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(format('%s %s', a.name, format_type(a.type_oid, NULL)), ', ' ORDER BY a.n)
        FROM pg_catalog.pg_proc AS p,
            unnest(p.proargnames, p.proallargtypes, p.proargmodes) WITH ORDINALITY AS a (name, type_oid, mode, n)
        WHERE p.oid = 'payment_outbox._ledger_row'::regproc AND a.mode = 't'
    ),
    (
        SELECT string_agg(format('%s %s', a.attname, format_type(a.atttypid, NULL)), ', ' ORDER BY a.attnum)
        FROM pg_catalog.pg_attribute AS a
        WHERE a.attrelid = 'payment_outbox.payment_outbox_attempts'::regclass AND a.attnum > 0 AND NOT a.attisdropped
    ),
    '_ledger_row returns the ledger''s columns in the ledger''s order'
);

-- One place each: the ledger is appended to only through _ledger_row, the attempt limit is read
-- only by _state_at_limit, and the legacy hash of a payload's text is computed only by _same_payload.
-- On Citus (sql/citus/, where tests/citus runs this file on every node) a bucket's claim and repair
-- append to the ledger's shard, named by a format() placeholder: the same rule holds for them.
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(p.proname, ', ' ORDER BY p.proname)
        FROM pg_catalog.pg_proc AS p
        WHERE
            p.pronamespace = 'payment_outbox'::regnamespace
            AND p.prosrc ~* 'INSERT\s+INTO\s+payment_outbox\.(payment_outbox_attempts|%[0-9]+\$I)\s'
            AND p.prosrc !~ 'payment_outbox\._ledger_row\('
    ),
    NULL, 'every function that appends to the ledger builds its rows with _ledger_row'
);
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(p.proname, ', ' ORDER BY p.proname)
        FROM pg_catalog.pg_proc AS p
        WHERE
            p.pronamespace = 'payment_outbox'::regnamespace
            AND p.proname <> '_state_at_limit'
            AND p.prosrc ~ 'payment_outbox\._max_attempt_count\('
    ),
    NULL, 'only _state_at_limit reads the maximum attempt count'
);
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(p.proname, ', ' ORDER BY p.proname)
        FROM pg_catalog.pg_proc AS p
        WHERE
            p.pronamespace = 'payment_outbox'::regnamespace
            AND p.proname <> '_same_payload'
            AND p.prosrc ~ 'sha256\(convert_to\([a-z_.]*payload'
    ),
    NULL, 'only _same_payload compares a payload by the hash of its text'
);

-- What the rules decide, at the edges.
SELECT payment_outbox_proof.is(
    (
        SELECT array_agg(q.state || CASE WHEN q.reason IS NULL THEN '' ELSE ', with a reason' END ORDER BY c.n)
        FROM (
            VALUES
            (1, 'RETRYABLE'::payment_outbox.outbox_attempt_state, 19, 0),
            (2, 'RETRYABLE', 20, 0),
            (3, 'RETRYABLE', 25, 5),
            (4, 'ZOMBIE_REQUEUE', 19, 0),
            (5, 'ZOMBIE_REQUEUE', 20, 0),
            (6, 'DISPATCHED', 40, 0),
            (7, 'FAILED', 40, 0)
        ) AS c (n, state, attempt_no, attempt_base)
        CROSS JOIN LATERAL payment_outbox._state_at_limit(c.state, c.attempt_no, c.attempt_base, 'E1', 'lost') AS q
    ),
    ARRAY[
        'RETRYABLE', 'QUARANTINED, with a reason', 'QUARANTINED, with a reason', 'ZOMBIE_REQUEUE',
        'QUARANTINED, with a reason', 'DISPATCHED', 'FAILED'
    ],
    'at the default limit of 20, counted from the attempt base, a retry or a zombie becomes QUARANTINED, with a reason'
);
SELECT payment_outbox_proof.is(
    (
        SELECT array_agg(q.reason ORDER BY c.state)
        FROM (VALUES ('RETRYABLE'::payment_outbox.outbox_attempt_state), ('ZOMBIE_REQUEUE')) AS c (state)
        CROSS JOIN LATERAL payment_outbox._state_at_limit(c.state, 21, 1, 'E1', 'no completion') AS q
    ),
    ARRAY[
        'retries exhausted: RETRYABLE (E1) at attempt 20, the maximum attempt count is 20',
        'outcome unknown: no completion, at the maximum attempt count 20'
    ],
    'the reasons name the error code of a retry and the error message of a zombie'
);
-- A constant item id, not gen_random_uuid(): a volatile argument keeps _same_payload from being
-- inlined, and Citus cannot plan a SQL function's parameters over a distributed table.
SELECT payment_outbox_proof.is(
    (
        SELECT array_agg(s.same_payload ORDER BY c.n)
        FROM (
            VALUES
            (1, '{"amount": 1.0}'::jsonb, '{"amount": 1.00}'::jsonb),
            (2, '{"amount": 1}', '{"amount": 2}'),
            (3, '{"b": 1, "a": 2}', '{"a": 2, "b": 1}')
        ) AS c (n, stored, given)
        CROSS JOIN LATERAL payment_outbox._same_payload(
            '00000000-0000-4000-8000-000000000000'::uuid, payment_outbox._payload_sha256(c.stored), c.given, payment_outbox._payload_sha256(c.given)
        ) AS s
    ),
    ARRAY[TRUE, FALSE, TRUE],
    'payloads equal as jsonb are the same payload, by their canonical hashes; another amount is not'
);
SELECT payment_outbox_proof.is(
    (
        SELECT s.same_payload
        FROM payment_outbox._same_payload(
            '00000000-0000-4000-8000-000000000000'::uuid, sha256(convert_to('{"amount": 1.0}', 'UTF8')), '{"amount": 1.0}',
            payment_outbox._payload_sha256('{"amount": 1.0}')
        ) AS s
    ),
    TRUE,
    'an item hashed before tables/0012 (the hash of its jsonb text) matches the same payload'
);
