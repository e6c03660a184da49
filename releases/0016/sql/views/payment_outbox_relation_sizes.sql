-- Size, live and dead rows of every leaf table of the package's tables, one row per partition.
CREATE OR REPLACE VIEW payment_outbox.payment_outbox_relation_sizes AS
WITH package_tables AS (
    SELECT
        t.table_name,
        ('payment_outbox.' || t.table_name)::regclass AS relid
    FROM (
        VALUES
        ('payment_outbox_attempts'),
        ('payment_outbox_idempotency_keys'),
        ('payment_outbox_pending')
    ) AS t (table_name)
),

-- pg_partition_tree lists nothing for a table that is not partitioned: that table is its own leaf.
leaves AS (
    SELECT
        p.table_name,
        tree.relid
    FROM package_tables AS p
    CROSS JOIN LATERAL pg_catalog.pg_partition_tree(p.relid) AS tree
    WHERE tree.isleaf
    UNION ALL
    SELECT
        p.table_name,
        p.relid
    FROM package_tables AS p
    INNER JOIN pg_catalog.pg_class AS c ON p.relid = c.oid
    WHERE c.relkind = 'r'
)

SELECT
    l.table_name,
    c.relname::text AS partition_name,
    pg_catalog.pg_total_relation_size(l.relid) AS total_bytes,
    coalesce(s.n_live_tup, 0) AS live_rows,
    coalesce(s.n_dead_tup, 0) AS dead_rows
FROM leaves AS l
INNER JOIN pg_catalog.pg_class AS c ON l.relid = c.oid
LEFT JOIN pg_catalog.pg_stat_user_tables AS s ON l.relid = s.relid;

COMMENT ON VIEW payment_outbox.payment_outbox_relation_sizes IS
'Growth you can see: for the ledger, the key register and the hot queue, one row per leaf table '
'(each partition of a partitioned table, or the table itself): bytes on disk with indexes and '
'TOAST, and the statistics collector''s live and dead row estimates. Dead rows of '
'payment_outbox_pending are the queue''s vacuum debt. Readable by outbox_readonly.';

REVOKE ALL ON payment_outbox.payment_outbox_relation_sizes FROM PUBLIC;
GRANT SELECT ON payment_outbox.payment_outbox_relation_sizes TO outbox_readonly, outbox_repair;
