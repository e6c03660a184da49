-- Every plpgsql function of the package, read from the catalog; a trigger function once per table
-- that fires it (plpgsql_check checks a trigger body against its table's row type).
SELECT DISTINCT
    p.oid AS function_oid,
    p.oid::regprocedure::text AS function_name,
    t.tgrelid AS relation_oid,
    t.tgrelid::regclass::text AS relation_name
FROM pg_catalog.pg_proc AS p
INNER JOIN pg_catalog.pg_language AS l ON p.prolang = l.oid
LEFT JOIN pg_catalog.pg_trigger AS t ON p.oid = t.tgfoid
WHERE p.pronamespace = 'payment_outbox'::regnamespace AND l.lanname = 'plpgsql'
ORDER BY function_name, relation_name;
