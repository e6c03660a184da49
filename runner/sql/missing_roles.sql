-- The runtime roles that do not exist yet.
SELECT r.rolname
FROM unnest(%(roles)s::text[]) AS r (rolname)
WHERE
    NOT EXISTS (
        SELECT FROM pg_catalog.pg_roles AS p
        WHERE p.rolname = r.rolname
    )
ORDER BY r.rolname;
