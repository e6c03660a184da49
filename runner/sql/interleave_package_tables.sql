-- The package's data tables, which an interleaving permutation starts from empty (not the migration ledger).
SELECT format('%I.%I', t.schemaname, t.tablename) AS table_name
FROM pg_catalog.pg_tables AS t
WHERE t.schemaname = 'payment_outbox' AND t.tablename <> 'schema_migrations'
ORDER BY t.tablename;
