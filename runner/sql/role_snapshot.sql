-- The roles the package and its tests use, with their attributes and memberships. Roles belong to
-- the whole cluster: the outbox_* roles, the connected login and every member of an outbox_* role.
WITH relevant AS (
    SELECT r.oid
    FROM pg_catalog.pg_roles AS r
    WHERE
        r.rolname LIKE 'outbox\_%'
        OR r.rolname = current_user
        OR EXISTS (
            SELECT FROM pg_catalog.pg_auth_members AS m
            INNER JOIN pg_catalog.pg_roles AS g ON m.roleid = g.oid
            WHERE m.member = r.oid AND g.rolname LIKE 'outbox\_%'
        )
)

SELECT
    r.rolname AS role_name,
    concat_ws(
        ' ',
        CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
        CASE WHEN r.rolcanlogin THEN 'LOGIN' ELSE 'NOLOGIN' END,
        CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
        CASE WHEN r.rolcreatedb THEN 'CREATEDB' END,
        CASE WHEN r.rolreplication THEN 'REPLICATION' END,
        CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END,
        CASE WHEN NOT r.rolinherit THEN 'NOINHERIT' END
    ) AS attributes,
    coalesce((
        SELECT string_agg(g.rolname || CASE WHEN m.admin_option THEN ' (ADMIN)' ELSE '' END, ', ' ORDER BY g.rolname)
        FROM pg_catalog.pg_auth_members AS m
        INNER JOIN pg_catalog.pg_roles AS g ON m.roleid = g.oid
        WHERE m.member = r.oid
    ), '') AS member_of
FROM pg_catalog.pg_roles AS r
WHERE r.oid IN (SELECT relevant.oid FROM relevant)
ORDER BY r.rolname;
