-- Proof: every grant in the schema, read from the catalog, is exactly the declared matrix.
-- requires: _declared_privileges.sql
-- Every privilege granted to PUBLIC or to a runtime role on the schema, its relations and
-- its functions. A NULL acl means the defaults, which for functions include PUBLIC EXECUTE.
CREATE TEMPORARY TABLE granted ON COMMIT DROP AS
WITH acl AS (
    SELECT
        'schema ' || n.nspname AS object_name,
        x.grantee,
        x.privilege_type
    FROM pg_catalog.pg_namespace AS n
    CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS x
    WHERE n.nspname = 'payment_outbox'
    UNION ALL
    SELECT
        CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'S' THEN 'sequence ' ELSE 'table ' END || c.relname AS object_name,
        x.grantee,
        x.privilege_type
    FROM pg_catalog.pg_class AS c
    CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) AS x
    WHERE c.relnamespace = 'payment_outbox'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    UNION ALL
    SELECT
        'function ' || regexp_replace(p.oid::regprocedure::text, '^payment_outbox\.', '') AS object_name,
        x.grantee,
        x.privilege_type
    FROM pg_catalog.pg_proc AS p
    CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS x
    WHERE p.pronamespace = 'payment_outbox'::regnamespace
)

SELECT
    CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE acl.grantee::regrole::text END AS grantee,
    acl.object_name,
    acl.privilege_type AS privilege
FROM acl
WHERE acl.grantee = 0 OR acl.grantee::regrole::text IN (
    'outbox_ingest', 'outbox_executor', 'outbox_repair', 'outbox_readonly', 'outbox_auditor',
    'outbox_operator'
);

SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(format('%s %s ON %s', privilege, grantee, object_name), '; ' ORDER BY 1)
        FROM (
            SELECT * FROM granted
            EXCEPT
            SELECT * FROM declared_privileges
        ) AS extra
    ),
    NULL, 'no privilege beyond the declared matrix'
);
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(format('%s %s ON %s', privilege, grantee, object_name), '; ' ORDER BY 1)
        FROM (
            SELECT * FROM declared_privileges
            EXCEPT
            SELECT * FROM granted
        ) AS missing
    ),
    NULL, 'every declared privilege is granted'
);
SELECT payment_outbox_proof.is(
    (
        SELECT count(*) FROM granted
        WHERE grantee = 'PUBLIC'
    ), 0::bigint, 'PUBLIC holds nothing in the schema'
);

SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(p.proname, ', ' ORDER BY p.proname)
        FROM pg_catalog.pg_proc AS p
        WHERE
            p.pronamespace = 'payment_outbox'::regnamespace
            AND p.prosecdef
            AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, payment_outbox, pg_temp'], FALSE)
    ),
    NULL, 'every SECURITY DEFINER function pins search_path to pg_catalog, payment_outbox, pg_temp'
);

SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(r.rolname, ', ' ORDER BY r.rolname)
        FROM pg_catalog.pg_roles AS r
        WHERE
            r.rolname IN (
                'outbox_ingest', 'outbox_executor', 'outbox_repair', 'outbox_readonly', 'outbox_auditor', 'outbox_operator'
            )
            AND (r.rolcanlogin OR r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls)
    ),
    NULL, 'runtime roles are NOLOGIN with no special attributes'
);

SELECT
    payment_outbox_proof.throws_ok(
        format($q$SET LOCAL ROLE %I; SELECT payload FROM payment_outbox.payment_outbox_pending$q$, r.rolname),
        '42501', format('%s cannot read pending rows directly', r.rolname)
    )
FROM (
    VALUES ('outbox_ingest'), ('outbox_executor'), ('outbox_repair'), ('outbox_readonly'), ('outbox_auditor'),
    ('outbox_operator')
)
    AS r (rolname);
SELECT payment_outbox_proof.throws_ok(
    $q$SET LOCAL ROLE outbox_readonly; SELECT * FROM payment_outbox.participant_outbox_sequences$q$,
    '42501', 'outbox_readonly cannot read the sequence table'
);
SELECT payment_outbox_proof.ok(
    NOT EXISTS (
        SELECT FROM pg_catalog.pg_attribute
        WHERE attrelid IN (
            'payment_outbox.payment_outbox_in_flight'::regclass,
            'payment_outbox.payment_outbox_queue_metrics'::regclass
        )
        AND attname = 'payload'
    ),
    'the views readable by outbox_readonly carry no payload'
);

-- Runtime roles belong to the whole cluster: a login granted one reaches every database that has
-- the package and lets it connect. The package grants them nothing on any database; CONNECT is
-- the DBA's to grant, per database, to the logins meant for it (README, Roles).
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(format('%s %s ON DATABASE %s', x.privilege_type, x.grantee::regrole, d.datname), '; ')
        FROM pg_catalog.pg_database AS d
        CROSS JOIN LATERAL aclexplode(d.datacl) AS x
        WHERE x.grantee <> 0 AND x.grantee::regrole::text IN (
            'outbox_ingest', 'outbox_executor', 'outbox_repair', 'outbox_readonly', 'outbox_auditor',
            'outbox_operator'
        )
    ),
    NULL, 'no runtime role holds a privilege on any database of the cluster'
);
