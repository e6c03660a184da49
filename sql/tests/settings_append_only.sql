-- Proof: the settings row cannot be removed and its history cannot be changed, not even by the owner.
SELECT payment_outbox_proof.throws_ok(
    $q$UPDATE payment_outbox.payment_outbox_settings_history SET new_value = '5'$q$,
    'PO020', 'the owner cannot UPDATE the settings history'
);
SELECT payment_outbox_proof.throws_ok(
    $q$DELETE FROM payment_outbox.payment_outbox_settings_history$q$,
    'PO020', 'the owner cannot DELETE the settings history'
);
SELECT payment_outbox_proof.throws_ok(
    $q$DELETE FROM payment_outbox.payment_outbox_settings$q$,
    'PO020', 'the owner cannot DELETE the settings row'
);
SELECT payment_outbox_proof.throws_ok(
    $q$INSERT INTO payment_outbox.payment_outbox_settings (max_attempt_count) VALUES (5)$q$,
    '23505', 'there is one settings row'
);
SELECT payment_outbox_proof.throws_ok(
    $q$UPDATE payment_outbox.payment_outbox_settings SET max_attempt_count = 1$q$,
    '23514', 'a value out of range cannot be stored, even by the owner'
);
SELECT
    payment_outbox_proof.throws_ok(
        format($q$SET LOCAL ROLE %I; UPDATE payment_outbox.payment_outbox_settings SET max_attempt_count = 5$q$, r.rolname),
        '42501', format('%s cannot change the settings row directly', r.rolname)
    )
FROM (
    VALUES ('outbox_ingest'), ('outbox_executor'), ('outbox_repair'), ('outbox_readonly'), ('outbox_auditor'),
    ('outbox_operator')
)
    AS r (rolname);
