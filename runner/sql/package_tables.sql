-- The package's data tables (every table but the migration ledger, the settings with their history,
-- the ledger's partition registry and the package's locks: configuration and a record of the catalog, not data): what
-- a proof, a permutation or a bench run empties.
SELECT format('%I.%I', t.schemaname, t.tablename) AS table_name
FROM pg_catalog.pg_tables AS t
WHERE
    t.schemaname = 'payment_outbox'
    AND t.tablename NOT IN (
        'schema_migrations', 'payment_outbox_settings', 'payment_outbox_settings_history',
        'payment_outbox_attempt_partitions', 'payment_outbox_locks'
    )
ORDER BY t.tablename;
