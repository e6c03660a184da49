-- Whether the migration ledger exists yet.
SELECT to_regclass('payment_outbox.schema_migrations') IS NOT NULL AS ledger_exists;
