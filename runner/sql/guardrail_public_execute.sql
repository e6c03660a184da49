-- Guardrail: PUBLIC may execute nothing in the schema (a NULL acl means PUBLIC EXECUTE).
SELECT
    p.oid::regprocedure::text AS offender,
    CASE WHEN p.proacl IS NULL THEN 'default privileges (never revoked)' ELSE array_to_string(p.proacl, ' ') END
        AS detail
FROM pg_catalog.pg_proc AS p
CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS x
WHERE
    p.pronamespace = 'payment_outbox'::regnamespace
    AND x.grantee = 0
    AND x.privilege_type = 'EXECUTE'
ORDER BY 1;
