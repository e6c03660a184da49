-- The package's data tables (every table but the migration ledger): what a proof, a permutation or a bench run empties.
SELECT format('%I.%I', t.schemaname, t.tablename) AS table_name
FROM pg_catalog.pg_tables AS t
WHERE t.schemaname = 'payment_outbox' AND t.tablename <> 'schema_migrations'
ORDER BY t.tablename;
