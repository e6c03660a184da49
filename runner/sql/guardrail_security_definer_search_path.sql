-- Guardrail: every SECURITY DEFINER function in the schema pins search_path, pg_temp named last.
SELECT
    p.oid::regprocedure::text AS offender,
    coalesce(array_to_string(p.proconfig, '; '), 'no SET clause') AS detail
FROM pg_catalog.pg_proc AS p
WHERE
    p.pronamespace = 'payment_outbox'::regnamespace
    AND p.prosecdef
    AND NOT EXISTS (
        SELECT FROM unnest(p.proconfig) AS c (setting)
        WHERE c.setting ~ '^search_path=' AND c.setting ~ '(^|, *)"?pg_temp"?$' AND c.setting !~ '\$user'
    )
ORDER BY 1;
