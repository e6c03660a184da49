-- Proof: a batch completion through outbox_executor fences each attempt as the single call does, and a refused batch writes nothing.
SET LOCAL ROLE outbox_ingest;
SELECT payment_outbox.enqueue_payment_outbox('cmp-i', 'cmp-p', 'cmp-k' || g, 'sepa', jsonb_build_object('n', g))
FROM generate_series(1, 6) AS g;

SET LOCAL ROLE outbox_executor;
CREATE TEMPORARY TABLE claims ON COMMIT DROP AS
SELECT
    outbox_id,
    attempt_no,
    idempotency_key,
    'worker-a' AS worker_id
FROM payment_outbox.claim_outbox_batch('worker-a', 10);

SET LOCAL ROLE outbox_ingest;
SELECT payment_outbox.enqueue_payment_outbox('cmp-i', 'cmp-p', 'cmp-k7', 'sepa', '{"n": 7}');

SET LOCAL ROLE outbox_executor;
INSERT INTO claims
SELECT
    outbox_id,
    attempt_no,
    idempotency_key,
    'worker-b' AS worker_id
FROM payment_outbox.claim_outbox_batch('worker-b', 10);

SELECT payment_outbox_proof.is(
    (SELECT string_agg(idempotency_key || ':' || attempt_no || ':' || worker_id, ',' ORDER BY idempotency_key) FROM claims),
    'cmp-k1:1:worker-a,cmp-k2:1:worker-a,cmp-k3:1:worker-a,cmp-k4:1:worker-a,cmp-k5:1:worker-a,cmp-k6:1:worker-a,cmp-k7:1:worker-b',
    'six claims of worker-a, one of worker-b'
);

-- cmp-k5 is completed before the batch: in the batch its attempt is already terminal.
SELECT payment_outbox_proof.is(
    (
        SELECT c.attempt_no || ':' || c.state
        FROM claims AS k, payment_outbox.complete_outbox_attempt(k.outbox_id, 1, 'DISPATCHED') AS c
        WHERE k.idempotency_key = 'cmp-k5'
    ),
    '2:DISPATCHED', 'cmp-k5 completed by the single call before the batch'
);

CREATE TEMPORARY TABLE batch_one ON COMMIT DROP AS
SELECT r.*
FROM payment_outbox.complete_outbox_attempts(
    'worker-a',
    ARRAY[
        (
            SELECT outbox_id FROM claims
            WHERE idempotency_key = 'cmp-k3'
        ),
        (
            SELECT outbox_id FROM claims
            WHERE idempotency_key = 'cmp-k1'
        ),
        (
            SELECT outbox_id FROM claims
            WHERE idempotency_key = 'cmp-k7'
        ),
        (
            SELECT outbox_id FROM claims
            WHERE idempotency_key = 'cmp-k2'
        ),
        (
            SELECT outbox_id FROM claims
            WHERE idempotency_key = 'cmp-k5'
        ),
        (
            SELECT outbox_id FROM claims
            WHERE idempotency_key = 'cmp-k4'
        )
    ],
    ARRAY[1, 2, 1, 1, 1, 1],
    ARRAY['DISPATCHED', 'DISPATCHED', 'DISPATCHED', 'RETRYABLE', 'DISPATCHED', 'FAILED']::payment_outbox.outbox_attempt_state[],
    ARRAY[NULL, NULL, NULL, 'TIMEOUT', NULL, 'REJECTED'],
    ARRAY[NULL, NULL, NULL, 'rail timed out', NULL, 'account closed'],
    ARRAY['rail-3', NULL, NULL, NULL, NULL, NULL]
) AS r;

SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(b.item_no || ':' || k.idempotency_key, ',' ORDER BY b.item_no)
        FROM batch_one AS b INNER JOIN claims AS k ON b.outbox_id = k.outbox_id
    ),
    '1:cmp-k3,2:cmp-k1,3:cmp-k7,4:cmp-k2,5:cmp-k5,6:cmp-k4', 'one row per completion, in the order given'
);
SELECT payment_outbox_proof.is(
    (
        SELECT
            string_agg(
                b.outcome || ':' || coalesce(b.attempt_no::text, '-') || ':' || coalesce(b.state::text, '-'), ',' ORDER BY b.item_no
            )
        FROM batch_one AS b
    ),
    'completed:2:DISPATCHED,stale:-:-,stale:-:-,completed:2:RETRYABLE,stale:-:-,completed:2:FAILED',
    'completed with the ledger row''s attempt and state; stale for a wrong attempt_no, another worker''s claim and a '
    || 'terminal attempt'
);

RESET ROLE;
SELECT payment_outbox_proof.is(
    (
        SELECT
            string_agg(
                a.idempotency_key || '/' || a.attempt_no || ':' || a.state || ':' || a.worker_id || ':'
                || coalesce(a.error_code, '-') || ':' || coalesce(a.error_message, '-') || ':' || coalesce(a.rail_reference, '-'),
                ',' ORDER BY a.idempotency_key, a.attempt_no
            )
        FROM payment_outbox.payment_outbox_attempts AS a
    ),
    'cmp-k1/1:DISPATCHING:worker-a:-:-:-,'
    || 'cmp-k2/1:DISPATCHING:worker-a:-:-:-,cmp-k2/2:RETRYABLE:worker-a:TIMEOUT:rail timed out:-,'
    || 'cmp-k3/1:DISPATCHING:worker-a:-:-:-,cmp-k3/2:DISPATCHED:worker-a:-:-:rail-3,'
    || 'cmp-k4/1:DISPATCHING:worker-a:-:-:-,cmp-k4/2:FAILED:worker-a:REJECTED:account closed:-,'
    || 'cmp-k5/1:DISPATCHING:worker-a:-:-:-,cmp-k5/2:DISPATCHED:worker-a:-:-:-,'
    || 'cmp-k6/1:DISPATCHING:worker-a:-:-:-,'
    || 'cmp-k7/1:DISPATCHING:worker-b:-:-:-',
    'every completed outcome appended to the ledger with its error and rail reference; the stale ones appended nothing'
);
SELECT payment_outbox_proof.is(
    (
        SELECT
            string_agg(
                p.idempotency_key || ':' || coalesce(p.attempt_no::text, '-') || ':' || coalesce(p.worker_id, '-') || ':'
                || p.attempt_count,
                ',' ORDER BY p.idempotency_key
            )
        FROM payment_outbox.payment_outbox_pending AS p
    ),
    'cmp-k1:1:worker-a:1,cmp-k2:-:-:2,cmp-k6:1:worker-a:1,cmp-k7:1:worker-b:1',
    'terminal items left pending; the retried one waits unclaimed; the stale claims are untouched'
);
SELECT payment_outbox_proof.ok(
    (
        SELECT p.next_attempt_at > now() FROM payment_outbox.payment_outbox_pending AS p
        WHERE p.idempotency_key = 'cmp-k2'
    ),
    'the retried item is due only after its backoff'
);

-- At the maximum attempt count a RETRYABLE completion becomes QUARANTINED, as in the single call
-- (issue 16: retries exhausted is a person's decision, never FAILED by the package; this proof
-- expected FAILED before). The maximum is the operator's to set (rolled back with the proof).
SET LOCAL ROLE outbox_operator;
SELECT max_attempt_count FROM payment_outbox.set_outbox_settings(p_max_attempt_count => 2);
SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(r.outcome || ':' || r.attempt_no || ':' || r.state, ',' ORDER BY r.item_no)
        FROM payment_outbox.complete_outbox_attempts(
            'worker-a',
            ARRAY[
                (
                    SELECT outbox_id FROM claims
                    WHERE idempotency_key = 'cmp-k6'
                ),
                (
                    SELECT outbox_id FROM claims
                    WHERE idempotency_key = 'cmp-k1'
                )
            ],
            ARRAY[1, 1],
            ARRAY['RETRYABLE', 'RETRYABLE']::payment_outbox.outbox_attempt_state[]
        ) AS r
    ),
    'completed:2:QUARANTINED,completed:2:QUARANTINED',
    'at attempt 2 of 2, RETRYABLE becomes QUARANTINED for every completion of the batch'
);
SET LOCAL ROLE outbox_operator;
SELECT max_attempt_count FROM payment_outbox.set_outbox_settings(p_max_attempt_count => 20);
RESET ROLE;
SELECT payment_outbox_proof.is(
    (
        SELECT
            string_agg(
                p.idempotency_key || ':' || coalesce(p.attempt_no::text, '-') || ':' || p.attempt_count || ':'
                || (p.quarantined_at IS NOT NULL) || ':' || (p.next_attempt_at = 'infinity'),
                ',' ORDER BY p.idempotency_key
            )
        FROM payment_outbox.payment_outbox_pending AS p
    ),
    'cmp-k1:-:2:true:true,cmp-k2:-:2:false:false,cmp-k6:-:2:true:true,cmp-k7:1:1:false:false',
    'the quarantined items stay pending, unclaimed, quarantined and never due'
);
SELECT payment_outbox_proof.is(
    (
        SELECT count(*) FROM payment_outbox.payment_outbox_attempts AS a
        WHERE
            a.idempotency_key IN ('cmp-k1', 'cmp-k6') AND a.state = 'QUARANTINED' AND a.attempt_no = 2
            AND a.reason LIKE 'retries exhausted: RETRYABLE at attempt 2, the maximum attempt count is 2'
    ),
    2::bigint, 'their QUARANTINED attempts are in the ledger, with the reason'
);
SELECT payment_outbox_proof.is(
    (
        SELECT count(*) FROM payment_outbox.payment_outbox_attempts AS a
        WHERE a.idempotency_key IN ('cmp-k1', 'cmp-k6') AND a.state = 'FAILED'
    ),
    0::bigint, 'neither is FAILED'
);
-- The quarantined items leave the rest of the proof as they were: failed by an operator.
SELECT set_config('payment_outbox.proof_quarantined', (
    SELECT string_agg(outbox_id::text, ',') FROM claims
    WHERE idempotency_key IN ('cmp-k1', 'cmp-k6')
), TRUE);
SET LOCAL ROLE outbox_operator;
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(f.state || ':' || f.attempt_no, ',')
        FROM
            unnest(string_to_array(current_setting('payment_outbox.proof_quarantined'), ',')::uuid[]) AS q (outbox_id),
            payment_outbox.fail_quarantined(q.outbox_id, 'rail has no such payment', 'proof') AS f
    ),
    'FAILED:3,FAILED:3', 'an operator fails both'
);
RESET ROLE;
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(p.idempotency_key, ',' ORDER BY p.idempotency_key)
        FROM payment_outbox.payment_outbox_pending AS p
    ),
    'cmp-k2,cmp-k7', 'the failed items left pending'
);

-- Each refusal carries one valid completion (cmp-k7 by worker-b) before the bad one, and must write
-- neither.
CREATE TEMPORARY TABLE before_refusals ON COMMIT DROP AS
SELECT
    payment_outbox_proof.row_counts() AS counts,
    (
        SELECT string_agg(p.outbox_id || ':' || coalesce(p.attempt_no::text, '-'), ',' ORDER BY p.outbox_id)
        FROM payment_outbox.payment_outbox_pending AS p
    ) AS claims;
SELECT set_config('payment_outbox.proof_k7', (
    SELECT outbox_id::text FROM claims
    WHERE idempotency_key = 'cmp-k7'
), TRUE);
SELECT set_config('payment_outbox.proof_k2', (
    SELECT outbox_id::text FROM claims
    WHERE idempotency_key = 'cmp-k2'
), TRUE);

SET LOCAL ROLE outbox_executor;
SELECT
    payment_outbox_proof.throws_ok(
        format(
            'SELECT * FROM payment_outbox.complete_outbox_attempts(%L, %s, %s, %s::payment_outbox.outbox_attempt_state[]%s)',
            f.worker_id, f.ids, f.attempt_nos, f.states, f.optional
        ),
        f.sqlstate,
        f.description
    )
FROM (
    SELECT
        f.*,
        format('ARRAY[%L::uuid, %L::uuid]', current_setting('payment_outbox.proof_k7'), f.second_id) AS ids
    FROM (
        VALUES
        (
            'worker-b', current_setting('payment_outbox.proof_k2'), 'ARRAY[1]', $$ARRAY['DISPATCHED', 'DISPATCHED']$$, '',
            'PO017', 'fewer attempt numbers than outbox ids are refused'
        ),
        (
            'worker-b', current_setting('payment_outbox.proof_k2'), 'ARRAY[1, 1]', $$ARRAY['DISPATCHED']$$, '',
            'PO017', 'fewer states than outbox ids are refused'
        ),
        (
            'worker-b', current_setting('payment_outbox.proof_k2'), 'ARRAY[1, 1]', $$ARRAY['DISPATCHED', 'DISPATCHED']$$,
            $$, ARRAY['E1']$$, 'PO017', 'fewer error codes than outbox ids are refused'
        ),
        (
            'worker-b', current_setting('payment_outbox.proof_k2'), 'ARRAY[1, 1]', $$ARRAY['DISPATCHED', 'DISPATCHED']$$,
            $$, NULL, ARRAY['m1', 'm2', 'm3']$$, 'PO017', 'more error messages than outbox ids are refused'
        ),
        (
            'worker-b', current_setting('payment_outbox.proof_k2'), 'ARRAY[1, 1]', $$ARRAY['DISPATCHED', 'DISPATCHED']$$,
            $$, NULL, NULL, ARRAY['r1']$$, 'PO017', 'fewer rail references than outbox ids are refused'
        ),
        (
            'worker-b', current_setting('payment_outbox.proof_k7'), 'ARRAY[1, 1]', $$ARRAY['DISPATCHED', 'DISPATCHED']$$, '',
            'PO017', 'an outbox id given twice is refused'
        ),
        (
            'worker-b', NULL, 'ARRAY[1, 1]', $$ARRAY['DISPATCHED', 'DISPATCHED']$$, '',
            'PO017', 'a null outbox id is refused'
        ),
        (
            'worker-b', current_setting('payment_outbox.proof_k2'), 'ARRAY[1, 1]', $$ARRAY['DISPATCHED', 'DISPATCHING']$$, '',
            'PO014', 'a DISPATCHING completion is refused'
        ),
        (
            'worker-b', current_setting('payment_outbox.proof_k2'), 'ARRAY[1, 1]', $$ARRAY['DISPATCHED', NULL]$$, '',
            'PO014', 'a null state is refused'
        ),
        (
            'worker-b', gen_random_uuid()::text, 'ARRAY[1, 1]', $$ARRAY['DISPATCHED', 'DISPATCHED']$$, '',
            'PO003', 'an unknown outbox id is refused'
        ),
        (
            '', current_setting('payment_outbox.proof_k2'), 'ARRAY[1, 1]', $$ARRAY['DISPATCHED', 'DISPATCHED']$$, '',
            'PO010', 'an empty worker id is refused'
        )
    ) AS f (worker_id, second_id, attempt_nos, states, optional, sqlstate, description)
) AS f;

SELECT payment_outbox_proof.throws_ok(
    format(
        'SELECT * FROM payment_outbox.complete_outbox_attempts(%L, %L::uuid[], %L::integer[], %L::payment_outbox.outbox_attempt_state[])',
        'worker-b',
        (
            SELECT array_prepend(current_setting('payment_outbox.proof_k7')::uuid, array_agg(gen_random_uuid()))
            FROM generate_series(1, 50000)
        ),
        array_fill(1, ARRAY[50001]),
        array_fill('DISPATCHED'::payment_outbox.outbox_attempt_state, ARRAY[50001])
    ),
    'PO018', 'a batch over the completion limit is refused'
);

SELECT payment_outbox_proof.is(
    payment_outbox_proof.error_message(
        format(
            $q$SELECT * FROM payment_outbox.complete_outbox_attempts('worker-b', ARRAY[%L, %L, %L]::uuid[], ARRAY[1, 1, 1],
               ARRAY['DISPATCHED', 'DISPATCHED', 'DISPATCHING']::payment_outbox.outbox_attempt_state[])$q$,
            current_setting('payment_outbox.proof_k7'), current_setting('payment_outbox.proof_k2'),
            current_setting('payment_outbox.proof_k2')
        )
    ) LIKE 'completion 3 names outbox item % a second time',
    TRUE, 'the error names the first refused completion'
);

RESET ROLE;
SELECT payment_outbox_proof.is(
    (
        SELECT
            payment_outbox_proof.row_counts() || ' ' || (
                SELECT string_agg(p.outbox_id || ':' || coalesce(p.attempt_no::text, '-'), ',' ORDER BY p.outbox_id)
                FROM payment_outbox.payment_outbox_pending AS p
            )
    ),
    (SELECT counts || ' ' || claims FROM before_refusals),
    'refused batches wrote nothing: no ledger row, no claim ended'
);

-- The valid completion the refusals carried still completes on its own.
SET LOCAL ROLE outbox_executor;
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(r.outcome || ':' || r.attempt_no || ':' || r.state, ',')
        FROM payment_outbox.complete_outbox_attempts(
            'worker-b', ARRAY[current_setting('payment_outbox.proof_k7')::uuid], ARRAY[1], ARRAY['DISPATCHED']::payment_outbox.outbox_attempt_state[]
        ) AS r
    ),
    'completed:2:DISPATCHED', 'worker-b completes its own claim'
);
