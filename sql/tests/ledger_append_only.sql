-- Proof: the ledger refuses UPDATE and DELETE for everyone; runtime roles cannot TRUNCATE it.
SET LOCAL ROLE outbox_ingest;
SELECT * FROM payment_outbox.enqueue_payment_outbox('ledger-i1', 'ledger-p', 'ledger-k1', 'sepa', '{}');
SET LOCAL ROLE outbox_executor;
SELECT * FROM payment_outbox.claim_outbox_batch('worker-a', 1);
RESET ROLE;

SELECT payment_outbox_proof.throws_ok(
    $q$UPDATE payment_outbox.payment_outbox_attempts SET worker_id = 'forged'$q$,
    'PO020', 'the owner cannot UPDATE the ledger'
);
SELECT payment_outbox_proof.throws_ok(
    $q$DELETE FROM payment_outbox.payment_outbox_attempts$q$, 'PO020', 'the owner cannot DELETE from the ledger'
);
SELECT payment_outbox_proof.throws_ok(
    $q$DELETE FROM payment_outbox.payment_outbox_attempts WHERE false$q$,
    'PO020', 'a DELETE that matches no row is refused as well'
);

SELECT
    payment_outbox_proof.throws_ok(
        format($q$SET LOCAL ROLE %I; TRUNCATE payment_outbox.payment_outbox_attempts$q$, r.rolname),
        '42501', format('%s cannot TRUNCATE the ledger', r.rolname)
    )
FROM (
    VALUES ('outbox_ingest'), ('outbox_executor'), ('outbox_repair'), ('outbox_readonly'), ('outbox_auditor'),
    ('outbox_operator')
)
    AS r (rolname);

SELECT payment_outbox_proof.throws_ok(
    $q$SET LOCAL ROLE outbox_auditor; UPDATE payment_outbox.payment_outbox_attempts SET worker_id = 'x'$q$,
    '42501', 'the auditor reads the ledger and writes nothing'
);
SELECT payment_outbox_proof.throws_ok(
    $q$SET LOCAL ROLE outbox_executor;
       INSERT INTO payment_outbox.payment_outbox_attempts
       SELECT * FROM payment_outbox.payment_outbox_attempts$q$,
    '42501', 'a runtime role cannot INSERT into the ledger directly'
);
SELECT payment_outbox_proof.is(
    (
        SELECT count(*) FROM payment_outbox.payment_outbox_attempts
        WHERE worker_id = 'worker-a'
    ), 1::bigint,
    'the ledger row is unchanged'
);
