-- The privilege matrix of the current database as the catalog has it: grantee, object, privilege.
-- Covers the database itself, the payment_outbox schema and every relation, column, function and
-- type in it; a NULL acl is expanded to its defaults; OWNER rows name each object's owner.
WITH objects AS (
    SELECT
        'database' AS object_name,
        d.datdba AS owner_oid,
        coalesce(d.datacl, acldefault('d', d.datdba)) AS acl
    FROM pg_catalog.pg_database AS d
    WHERE d.datname = current_database()
    UNION ALL
    SELECT
        'schema ' || n.nspname AS object_name,
        n.nspowner AS owner_oid,
        coalesce(n.nspacl, acldefault('n', n.nspowner)) AS acl
    FROM pg_catalog.pg_namespace AS n
    WHERE n.nspname = 'payment_outbox'
    UNION ALL
    SELECT
        CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'S' THEN 'sequence ' WHEN 'm' THEN 'view ' ELSE 'table ' END
        || c.relname AS object_name,
        c.relowner AS owner_oid,
        coalesce(c.relacl, CASE c.relkind WHEN 'S' THEN acldefault('s', c.relowner) ELSE acldefault('r', c.relowner) END) AS acl
    FROM pg_catalog.pg_class AS c
    WHERE c.relnamespace = to_regnamespace('payment_outbox') AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    UNION ALL
    SELECT
        'column ' || c.relname || '.' || a.attname AS object_name,
        c.relowner AS owner_oid,
        a.attacl AS acl
    FROM pg_catalog.pg_attribute AS a
    INNER JOIN pg_catalog.pg_class AS c ON a.attrelid = c.oid
    WHERE c.relnamespace = to_regnamespace('payment_outbox') AND a.attacl IS NOT NULL
    UNION ALL
    SELECT
        'function ' || regexp_replace(p.oid::regprocedure::text, '^payment_outbox\.', '') AS object_name,
        p.proowner AS owner_oid,
        coalesce(p.proacl, acldefault('f', p.proowner)) AS acl
    FROM pg_catalog.pg_proc AS p
    WHERE p.pronamespace = to_regnamespace('payment_outbox')
    UNION ALL
    SELECT
        'type ' || t.typname AS object_name,
        t.typowner AS owner_oid,
        coalesce(t.typacl, acldefault('T', t.typowner)) AS acl
    FROM pg_catalog.pg_type AS t
    WHERE t.typnamespace = to_regnamespace('payment_outbox') AND t.typtype IN ('e', 'd', 'r', 'm')
),

matrix AS (
    SELECT
        CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END AS grantee,
        o.object_name,
        x.privilege_type || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END AS privilege
    FROM objects AS o
    CROSS JOIN LATERAL aclexplode(o.acl) AS x
    UNION ALL
    SELECT
        o.owner_oid::regrole::text AS grantee,
        o.object_name,
        'OWNER' AS privilege
    FROM objects AS o
    WHERE o.object_name NOT LIKE 'column %'
)

SELECT DISTINCT
    m.grantee,
    m.object_name,
    m.privilege
FROM matrix AS m
ORDER BY m.object_name, m.grantee, m.privilege;
