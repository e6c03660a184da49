-- The conversion's CHECK on the old ledger: NULL when absent, else whether it is validated.
SELECT (
    SELECT c.convalidated
    FROM pg_catalog.pg_constraint AS c
    WHERE c.conrelid = 'payment_outbox.payment_outbox_attempts'::regclass AND c.conname = %(constraint_name)s
) AS validated;
