"""The catalog of schema payment_outbox as comparable rows: what `pg_dump --schema-only` would show,
read with catalog queries so that it needs no client binary of the server's version.

Each row is (kind, object, definition). Columns are numbered by their position among the
columns not dropped, since an upgrade that drops a column leaves a gap a fresh install has not.

What the package defines is compared; what the server stamps on its own is left out:
- a column's attoptions keep only the options `ALTER TABLE ... ALTER COLUMN ... SET (...)` accepts
  (PACKAGE_ATTOPTIONS). Debian's PostgreSQL 15.20 writes `pg_attver=<number>` into every column's
  attoptions, a different number in each database, so two identical installs would differ on
  every column; a future server-owned option is left out the same way, while an option a
  migration sets is still compared.
- oids, attnums of dropped columns, relfilenodes, statistics and sizes are never read.
"""

from __future__ import annotations

import psycopg

# The attribute options a migration can set (PostgreSQL's ALTER TABLE, SET ( attribute_option ...)).
PACKAGE_ATTOPTIONS = ("n_distinct", "n_distinct_inherited")

# Every name is cast to text: the first branch would otherwise make the column type `name` and
# cut longer names (a table and a trigger name joined) to 63 bytes.
CATALOG_SQL = """
WITH ns AS (SELECT 'payment_outbox'::regnamespace AS oid)
SELECT 'schema', n.nspname::text, concat_ws(' | ', pg_get_userbyid(n.nspowner), n.nspacl::text,
                                      obj_description(n.oid, 'pg_namespace'))
FROM pg_namespace AS n, ns WHERE n.oid = ns.oid
UNION ALL
SELECT 'relation', c.relname::text, concat_ws(' | ', c.relkind, c.relpersistence, pg_get_userbyid(c.relowner),
                                        c.reloptions::text, c.relacl::text, obj_description(c.oid, 'pg_class'))
FROM pg_class AS c, ns WHERE c.relnamespace = ns.oid
UNION ALL
SELECT 'column', c.relname || '.' || a.attname,
       concat_ws(' | ', row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), format_type(a.atttypid, a.atttypmod),
                 a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attacl::text,
                 (SELECT array_agg(o.option ORDER BY o.option) FROM unnest(a.attoptions) AS o (option)
                  WHERE split_part(o.option, '=', 1) = ANY (%(package_attoptions)s))::text,
                 col_description(c.oid, a.attnum))
FROM pg_attribute AS a
JOIN pg_class AS c ON c.oid = a.attrelid
JOIN ns ON c.relnamespace = ns.oid
LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', c.relname || '.' || con.conname,
       concat_ws(' | ', pg_get_constraintdef(con.oid), con.condeferrable, con.convalidated,
                 obj_description(con.oid, 'pg_constraint'))
FROM pg_constraint AS con
JOIN pg_class AS c ON c.oid = con.conrelid
JOIN ns ON c.relnamespace = ns.oid
UNION ALL
SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indrelid
JOIN ns ON c.relnamespace = ns.oid
UNION ALL
SELECT 'trigger', c.relname || '.' || t.tgname,
       concat_ws(' | ', pg_get_triggerdef(t.oid), t.tgenabled, obj_description(t.oid, 'pg_trigger'))
FROM pg_trigger AS t
JOIN pg_class AS c ON c.oid = t.tgrelid
JOIN ns ON c.relnamespace = ns.oid
WHERE NOT t.tgisinternal
UNION ALL
SELECT 'function', p.oid::regprocedure::text,
       concat_ws(' | ', pg_get_functiondef(p.oid), pg_get_userbyid(p.proowner), p.proacl::text,
                 obj_description(p.oid, 'pg_proc'))
FROM pg_proc AS p, ns WHERE p.pronamespace = ns.oid
UNION ALL
SELECT 'view', c.relname::text, pg_get_viewdef(c.oid)
FROM pg_class AS c, ns WHERE c.relnamespace = ns.oid AND c.relkind IN ('v', 'm')
UNION ALL
SELECT 'type', t.typname::text,
       concat_ws(' | ', t.typtype, pg_get_userbyid(t.typowner), t.typacl::text, obj_description(t.oid, 'pg_type'),
                 (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum AS e
                  WHERE e.enumtypid = t.oid))
FROM pg_type AS t, ns WHERE t.typnamespace = ns.oid
UNION ALL
SELECT 'default acl', d.defaclobjtype::text, d.defaclacl::text
FROM pg_default_acl AS d, ns WHERE d.defaclnamespace = ns.oid
UNION ALL
SELECT 'extension dependency', e.extname::text, ''
FROM pg_extension AS e, ns WHERE e.extnamespace = ns.oid
ORDER BY 1, 2, 3
"""


def snapshot(url: str) -> list[tuple[str, str, str]]:
    """Every object of the schema with its definition, comment, owner, options and privileges."""
    with psycopg.connect(url) as conn:  # reads pg_catalog only
        rows = conn.execute(CATALOG_SQL, {"package_attoptions": list(PACKAGE_ATTOPTIONS)})
        return [(kind, name, definition or "") for kind, name, definition in rows]


def difference(have: list[tuple[str, str, str]], want: list[tuple[str, str, str]]) -> list[str]:
    """The rows only one side has, marked `-` (only in have) and `+` (only in want)."""
    only_have, only_want = set(have) - set(want), set(want) - set(have)
    return sorted([f"- {row}" for row in only_have] + [f"+ {row}" for row in only_want], key=lambda s: s[2:])
