-- Distributes the package's functions on a Citus coordinator: every one exists on every node, and the hot path is delegated.
-- Applied by outbox migrate --citus after sql/citus/functions/, on every run (each call is
-- idempotent). A function called inside a delegated call runs on the worker and must exist there;
-- create_distributed_function without a distribution argument propagates it to every node.
DO $functions$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE
            p.pronamespace = 'payment_outbox'::regnamespace
            AND p.prokind = 'f'
            AND NOT EXISTS (
                SELECT FROM pg_catalog.pg_depend AS d
                WHERE d.objid = p.oid AND d.deptype = 'e'
            )
            AND NOT EXISTS (
                SELECT FROM pg_dist_object AS o
                WHERE o.classid = 'pg_catalog.pg_proc'::regclass AND o.objid = p.oid
            )
        ORDER BY p.oid
    LOOP
        PERFORM create_distributed_function(v_function);
    END LOOP;
END
$functions$;

-- The hot path: each call runs on the node holding its participant (or bucket), as one local
-- transaction there; force_delegation lets a caller's explicit transaction be delegated too
-- (Citus then keeps the rest of that transaction on the same node).
SELECT create_distributed_function(
    'payment_outbox.enqueue_payment_outbox(text, text, text, text, jsonb)', 'p_participant_id',
    colocate_with => 'payment_outbox.participant_outbox_sequences', force_delegation => TRUE
);
SELECT create_distributed_function(
    'payment_outbox.complete_participant_attempt(text, uuid, integer, payment_outbox.outbox_attempt_state, text, text, text, text)',
    'p_participant_id',
    colocate_with => 'payment_outbox.participant_outbox_sequences', force_delegation => TRUE
);
SELECT create_distributed_function(
    'payment_outbox.claim_outbox_bucket(text, text, integer)', 'p_bucket_key',
    colocate_with => 'payment_outbox.participant_outbox_sequences', force_delegation => TRUE
);
SELECT create_distributed_function(
    'payment_outbox.repair_zombie_bucket(text, integer, integer)', 'p_bucket_key',
    colocate_with => 'payment_outbox.participant_outbox_sequences', force_delegation => TRUE
);
SELECT create_distributed_function(
    'payment_outbox.check_bucket_invariants(text)', 'p_bucket_key',
    colocate_with => 'payment_outbox.participant_outbox_sequences', force_delegation => TRUE
);
