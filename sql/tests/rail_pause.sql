-- Proof: a paused rail's items are not claimed, in-flight items finish, every pause and resume is recorded.
SET LOCAL ROLE outbox_ingest;
SELECT payment_outbox.enqueue_payment_outbox('pause-i', 'pause-p3', 'pause-k4', 'busy', '{"n": 4}');

-- The item of rail busy is in flight before busy is paused.
SET LOCAL ROLE outbox_executor;
CREATE TEMPORARY TABLE busy_claim ON COMMIT DROP AS
SELECT * FROM payment_outbox.claim_outbox_batch('pause-w0', 10);

SET LOCAL ROLE outbox_ingest;
SELECT payment_outbox.enqueue_payment_outbox('pause-i', 'pause-p1', 'pause-k1', 'slow', '{"n": 1}');
SELECT payment_outbox.enqueue_payment_outbox('pause-i', 'pause-p1', 'pause-k2', 'slow', '{"n": 2}');
SELECT payment_outbox.enqueue_payment_outbox('pause-i', 'pause-p2', 'pause-k3', 'fast', '{"n": 3}');

SET LOCAL ROLE outbox_operator;
CREATE TEMPORARY TABLE paused_rows ON COMMIT DROP AS
SELECT * FROM payment_outbox.pause_rail('slow', 'rail down: incident 42', 'alice');
SELECT payment_outbox_proof.ok(
    (SELECT paused AND NOT was_paused FROM paused_rows), 'pausing a running rail: paused, was not paused'
);
SELECT payment_outbox_proof.ok(
    (SELECT was_paused FROM payment_outbox.pause_rail('slow', 'still down', 'bob')),
    'pausing a paused rail is accepted and says it was paused'
);
SELECT payment_outbox_proof.ok(
    (SELECT NOT was_paused FROM payment_outbox.pause_rail('busy', 'maintenance', 'alice')),
    'pausing rail busy, which has an item in flight'
);
SELECT payment_outbox_proof.ok(
    (SELECT NOT was_paused AND items_changed = 0 FROM payment_outbox.resume_rail('never', 'carol')),
    'resuming a rail never paused is accepted, changes nothing and is recorded'
);

RESET ROLE;
SELECT payment_outbox_proof.is(
    (
        SELECT
            string_agg(
                format('%s %s %s %s %s', request, rail_type, was_paused, actor, items_changed), '; '
                ORDER BY history_id
            )
        FROM payment_outbox.payment_outbox_rail_history
    ),
    'PAUSE slow f alice 2; PAUSE slow t bob 0; PAUSE busy f alice 0; RESUME never f carol 0',
    'every call is in the rail history, in order, with actor, previous state and items flagged'
);
SELECT payment_outbox_proof.ok(
    (
        SELECT bool_and(changed_by = session_user AND changed_at = now())
        FROM payment_outbox.payment_outbox_rail_history
    ),
    'the history names the login and the time of each call'
);
SELECT payment_outbox_proof.is(
    (
        SELECT reason FROM payment_outbox.payment_outbox_rails
        WHERE rail_type = 'slow'
    ), 'still down',
    'the rail row holds the latest reason'
);
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(idempotency_key, ',' ORDER BY idempotency_key) FROM payment_outbox.payment_outbox_pending
        WHERE paused
    ),
    'pause-k1,pause-k2', 'the paused rail''s items not in flight are flagged; the in-flight item is not'
);

SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.is(
    (SELECT string_agg(idempotency_key, ',') FROM payment_outbox.claim_outbox_batch('pause-w1', 10)),
    'pause-k3', 'a claim takes only the item of the rail not paused'
);
SELECT payment_outbox_proof.is(
    (
        SELECT c.state::text FROM payment_outbox.complete_outbox_attempt(
            (SELECT outbox_id FROM busy_claim), 1, 'RETRYABLE', 'E1', 'try later', p_worker_id => 'pause-w0'
        ) AS c
    ),
    'RETRYABLE', 'the item in flight on the paused rail completes as usual'
);
RESET ROLE;
UPDATE payment_outbox.payment_outbox_pending SET next_attempt_at = now()
WHERE rail_type = 'busy';
SELECT payment_outbox_proof.ok(
    (
        SELECT paused FROM payment_outbox.payment_outbox_pending
        WHERE idempotency_key = 'pause-k4'
    ),
    'an item requeued RETRYABLE on a paused rail stays paused'
);
SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.is(
    (SELECT count(*) FROM payment_outbox.claim_outbox_batch('pause-w2', 10)), 0::bigint,
    'a paused rail''s requeued item is not claimed'
);

-- An item an enqueue slipped in unflagged while the pause committed is still not claimed.
RESET ROLE;
UPDATE payment_outbox.payment_outbox_pending SET paused = FALSE
WHERE idempotency_key = 'pause-k1';
SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.is(
    (SELECT count(*) FROM payment_outbox.claim_outbox_batch('pause-w3', 10)), 0::bigint,
    'an unflagged item of a paused rail is not claimed'
);

-- Bad inputs: refused with the package's SQLSTATE, nothing written.
SET LOCAL ROLE outbox_operator;
CREATE TEMPORARY TABLE before_bad ON COMMIT DROP AS
SELECT
    (SELECT count(*) FROM payment_outbox.payment_outbox_rail_history) AS history_rows,
    (SELECT string_agg(format('%s %s %s', rail_type, paused, reason), ',' ORDER BY rail_type) FROM payment_outbox.payment_outbox_rails)
        AS rails;
SELECT payment_outbox_proof.throws_ok(format('SELECT payment_outbox.pause_rail(%L, %L, %L)', c.rail, c.reason, c.actor), c.code, c.what)
FROM (
    VALUES
    (NULL, 'r', 'a', 'PO010', 'pause: null rail'),
    ('  ', 'r', 'a', 'PO010', 'pause: blank rail'),
    ('fast', NULL, 'a', 'PO010', 'pause: null reason'),
    ('fast', E'\t', 'a', 'PO010', 'pause: blank reason'),
    ('fast', 'r', NULL, 'PO010', 'pause: null actor'),
    ('fast', 'r', '', 'PO010', 'pause: empty actor'),
    (repeat('x', 65), 'r', 'a', 'PO015', 'pause: rail over 64 characters'),
    ('fast', repeat('x', 4097), 'a', 'PO015', 'pause: reason over 4096 characters'),
    ('fast', 'r', repeat('x', 256), 'PO015', 'pause: actor over 255 characters')
) AS c (rail, reason, actor, code, what);
SELECT payment_outbox_proof.throws_ok(format('SELECT payment_outbox.resume_rail(%L, %L)', c.rail, c.actor), c.code, c.what)
FROM (
    VALUES
    (NULL, 'a', 'PO010', 'resume: null rail'),
    ('slow', ' ', 'PO010', 'resume: blank actor'),
    ('slow', repeat('x', 256), 'PO015', 'resume: actor over 255 characters')
) AS c (rail, actor, code, what);
SELECT payment_outbox_proof.ok(
    (
        SELECT
            b.history_rows = (SELECT count(*) FROM payment_outbox.payment_outbox_rail_history)
            AND b.rails = (
                SELECT string_agg(format('%s %s %s', r.rail_type, r.paused, r.reason), ',' ORDER BY r.rail_type)
                FROM payment_outbox.payment_outbox_rails AS r
            )
        FROM before_bad AS b
    ),
    'refused calls wrote nothing'
);

-- Resume: the items are claimable again; an item a resume left flagged is unflagged by a claim.
SELECT payment_outbox_proof.ok(
    (SELECT was_paused AND NOT paused AND items_changed = 1 FROM payment_outbox.resume_rail('slow', 'alice')),
    'resuming the paused rail clears the flag of its flagged item'
);
RESET ROLE;
UPDATE payment_outbox.payment_outbox_pending SET paused = TRUE
WHERE idempotency_key = 'pause-k2';
SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.is(
    (SELECT string_agg(idempotency_key, ',' ORDER BY idempotency_key) FROM payment_outbox.claim_outbox_batch('pause-w4', 10)),
    'pause-k1,pause-k2', 'after resume both items are claimed, the one left flagged too'
);
RESET ROLE;
SELECT payment_outbox_proof.is(
    (
        SELECT count(*) FROM payment_outbox.payment_outbox_pending
        WHERE paused AND rail_type <> 'busy'
    ), 0::bigint,
    'no item of a running rail is left flagged'
);

-- Nobody changes the rails or their history but through the two functions.
SELECT payment_outbox_proof.throws_ok(
    $q$DELETE FROM payment_outbox.payment_outbox_rails$q$, 'PO020', 'the owner cannot DELETE a rail row'
);
SELECT payment_outbox_proof.throws_ok(
    $q$UPDATE payment_outbox.payment_outbox_rail_history SET actor = 'mallory'$q$, 'PO020',
    'the owner cannot UPDATE the rail history'
);
SELECT payment_outbox_proof.throws_ok(
    $q$DELETE FROM payment_outbox.payment_outbox_rail_history$q$, 'PO020', 'the owner cannot DELETE the rail history'
);
SELECT
    payment_outbox_proof.throws_ok(
        format($q$SET LOCAL ROLE %I; UPDATE payment_outbox.payment_outbox_rails SET paused = FALSE$q$, r.rolname),
        '42501', format('%s cannot change a rail row directly', r.rolname)
    )
FROM (
    VALUES ('outbox_ingest'), ('outbox_executor'), ('outbox_repair'), ('outbox_readonly'), ('outbox_auditor'),
    ('outbox_operator')
)
    AS r (rolname);
SELECT
    payment_outbox_proof.throws_ok(
        format($q$SET LOCAL ROLE %I; SELECT payment_outbox.pause_rail('fast', 'r', 'a')$q$, r.rolname),
        '42501', format('%s cannot pause a rail', r.rolname)
    )
FROM (
    VALUES ('outbox_ingest'), ('outbox_executor'), ('outbox_repair'), ('outbox_readonly'), ('outbox_auditor')
)
    AS r (rolname);
