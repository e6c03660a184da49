-- Proof: the helpers of one_place_per_rule.sql are inlined into a set-based caller's plan.
-- Apart from one_place_per_rule.sql, which tests/citus also runs on every Citus node: there a plan
-- over a distributed table is Citus's, and a shard's row is not the queue's row type.
-- Each helper is inlined into a set-based caller's plan, so that a batch is one statement and never
-- a call per row: a SECURITY DEFINER, a SET clause, VOLATILE or STRICT on one of them would show
-- here as a Function Scan.
SELECT
    payment_outbox_proof.ok(
        position('Function Scan' IN payment_outbox_proof.plan(h.query)) = 0,
        format('%s is inlined into its caller''s plan', h.helper)
    )
FROM (
    VALUES
    (
        '_ledger_row',
        $q$SELECT l.* FROM payment_outbox.payment_outbox_pending AS p
           CROSS JOIN LATERAL payment_outbox._ledger_row(p, p.attempt_count + 1, 'DISPATCHED', now()) AS l$q$
    ),
    (
        '_state_at_limit',
        $q$SELECT q.* FROM payment_outbox.payment_outbox_pending AS p
           CROSS JOIN LATERAL payment_outbox._state_at_limit(
               'RETRYABLE', p.attempt_count + 1, p.attempt_base, 'E1', NULL) AS q$q$
    ),
    (
        '_same_payload',
        $q$SELECT s.* FROM payment_outbox.payment_outbox_pending AS p
           CROSS JOIN LATERAL payment_outbox._same_payload(
               p.outbox_id, p.payload_sha256, p.payload, payment_outbox._payload_sha256(p.payload)) AS s$q$
    )
) AS h (helper, query);
