-- The body of every plpgsql function in the schema, for the dynamic SQL guardrail.
SELECT
    p.oid::regprocedure::text AS function_name,
    p.prosrc AS body
FROM pg_catalog.pg_proc AS p
INNER JOIN pg_catalog.pg_language AS l ON p.prolang = l.oid
WHERE p.pronamespace = 'payment_outbox'::regnamespace AND l.lanname = 'plpgsql'
ORDER BY 1;
