-- Guardrail: every relation of the package is owned by the schema's owner (a login that is neither
-- a superuser nor a runtime role) and grants exactly what declared_privileges declares
-- (sql/tests/_declared_privileges.sql, run first in the same transaction).
WITH relations AS (
    SELECT
        c.oid,
        c.relowner,
        CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'S' THEN 'sequence ' WHEN 'm' THEN 'view ' ELSE 'table ' END
        || c.relname AS object_name,
        coalesce(c.relacl, CASE c.relkind WHEN 'S' THEN acldefault('s', c.relowner) ELSE acldefault('r', c.relowner) END) AS acl
    FROM pg_catalog.pg_class AS c
    WHERE c.relnamespace = 'payment_outbox'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
),

granted AS (
    SELECT
        CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END AS grantee,
        r.object_name,
        x.privilege_type AS privilege
    FROM relations AS r
    CROSS JOIN LATERAL aclexplode(r.acl) AS x
    WHERE x.grantee <> r.relowner
    UNION ALL
    SELECT
        CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END AS grantee,
        'column ' || c.relname || '.' || a.attname AS object_name,
        x.privilege_type AS privilege
    FROM pg_catalog.pg_attribute AS a
    INNER JOIN pg_catalog.pg_class AS c ON a.attrelid = c.oid
    CROSS JOIN LATERAL aclexplode(a.attacl) AS x
    WHERE c.relnamespace = 'payment_outbox'::regnamespace
),

declared AS (
    SELECT
        d.grantee,
        d.object_name,
        d.privilege
    FROM declared_privileges AS d
    WHERE d.object_name ~ '^(table|view|sequence|column) '
),

schema_owner AS (
    SELECT
        n.nspowner AS oid,
        r.rolsuper,
        r.rolname
    FROM pg_catalog.pg_namespace AS n
    INNER JOIN pg_catalog.pg_roles AS r ON n.nspowner = r.oid
    WHERE n.oid = 'payment_outbox'::regnamespace
)

SELECT
    r.object_name AS offender,
    format('owned by %s, want %s (the schema owner)', r.relowner::regrole, o.rolname) AS detail
FROM relations AS r
CROSS JOIN schema_owner AS o
WHERE r.relowner <> o.oid
UNION ALL
SELECT
    'schema payment_outbox' AS offender,
    format('owned by %s, %s', o.rolname, CASE WHEN o.rolsuper THEN 'a superuser' ELSE 'a runtime role' END) AS detail
FROM schema_owner AS o
WHERE o.rolsuper OR o.rolname IN ('outbox_ingest', 'outbox_executor', 'outbox_repair', 'outbox_readonly', 'outbox_auditor', 'outbox_operator')
UNION ALL
SELECT
    e.object_name AS offender,
    format('%s holds %s, which is not declared', e.grantee, e.privilege) AS detail
FROM (
    SELECT * FROM granted
    EXCEPT
    SELECT * FROM declared
) AS e
UNION ALL
SELECT
    m.object_name AS offender,
    format('%s lacks %s, which is declared', m.grantee, m.privilege) AS detail
FROM (
    SELECT * FROM declared
    EXCEPT
    SELECT * FROM granted
) AS m
ORDER BY 1, 2;
