-- How many objects of each kind the guardrails checked.
SELECT
    (
        SELECT count(*) FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'payment_outbox'::regnamespace AND p.prosecdef
    ) AS security_definer_functions,
    (
        SELECT count(*) FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'payment_outbox'::regnamespace
    ) AS all_functions,
    (
        SELECT count(*) FROM pg_catalog.pg_class AS c
        WHERE c.relnamespace = 'payment_outbox'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    ) AS all_relations;
