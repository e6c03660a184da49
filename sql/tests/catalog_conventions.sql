-- Proof: one naming pattern for every index and constraint; a comment on every table, view, function and index.
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(format('%s on %s', c.conname, c.conrelid::regclass), ', ' ORDER BY c.conname)
        FROM pg_catalog.pg_constraint AS c
        INNER JOIN pg_catalog.pg_class AS t ON c.conrelid = t.oid
        WHERE
            c.connamespace = 'payment_outbox'::regnamespace
            AND NOT (
                c.conname LIKE t.relname || '\_%'
                AND c.conname ~ CASE c.contype
                    WHEN 'p' THEN '_pkey$' WHEN 'u' THEN '_key$' WHEN 'f' THEN '_fkey$'
                    WHEN 'c' THEN '_check$' WHEN 'x' THEN '_excl$' ELSE '^$'
                END
            )
            -- A partition's CHECK constraints are its parent's, under the parent's names (ATTACH
            -- PARTITION requires exactly those): the parent's names are the ones checked.
            AND NOT (
                t.relispartition
                AND c.coninhcount > 0
                AND c.conname IN (
                    SELECT pc.conname
                    FROM pg_catalog.pg_constraint AS pc
                    INNER JOIN pg_catalog.pg_inherits AS h ON pc.conrelid = h.inhparent
                    WHERE h.inhrelid = c.conrelid
                )
            )
            -- PostgreSQL 18 records every NOT NULL column in pg_constraint too, under the name it
            -- chooses itself, <table>_<column>_not_null: exactly those pass, and only from 18 on.
            AND NOT (
                c.contype = 'n'
                AND current_setting('server_version_num')::integer >= 180000
                AND cardinality(c.conkey) = 1
                AND c.conname = (
                    SELECT format('%s_%s_not_null', t.relname, a.attname)
                    FROM pg_catalog.pg_attribute AS a
                    WHERE a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                )
            )
    ),
    NULL, 'constraints are named <table>_<columns or rule>_{pkey,key,fkey,check,excl}, or <table>_<column>_not_null'
);
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(i.relname, ', ' ORDER BY i.relname)
        FROM pg_catalog.pg_index AS x
        INNER JOIN pg_catalog.pg_class AS i ON x.indexrelid = i.oid
        INNER JOIN pg_catalog.pg_class AS t ON x.indrelid = t.oid
        WHERE
            i.relnamespace = 'payment_outbox'::regnamespace
            AND NOT (
                i.relname LIKE t.relname || '\_%'
                AND i.relname ~ CASE WHEN x.indisprimary THEN '_pkey$' WHEN x.indisunique THEN '_key$' ELSE '_idx$' END
            )
    ),
    NULL, 'indexes are named <table>_<columns>_{pkey,key,idx}'
);
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(c.relname, ', ' ORDER BY c.relname)
        FROM pg_catalog.pg_class AS c
        WHERE
            c.relnamespace = 'payment_outbox'::regnamespace
            AND c.relkind IN ('r', 'p', 'v', 'm', 'i')
            AND obj_description(c.oid, 'pg_class') IS NULL
    ),
    NULL, 'every table, view and index has a comment'
);
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(p.proname, ', ' ORDER BY p.proname)
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'payment_outbox'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
    ),
    NULL, 'every function has a comment'
);
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(format('%s.%s', c.relname, a.attname), ', ' ORDER BY 1)
        FROM pg_catalog.pg_class AS c
        INNER JOIN pg_catalog.pg_attribute AS a ON c.oid = a.attrelid
        WHERE
            c.relnamespace = 'payment_outbox'::regnamespace
            AND c.relkind = 'r'
            AND a.attnum > 0 AND NOT a.attisdropped
            AND col_description(c.oid, a.attnum) IS NULL
            AND a.attname NOT IN (
                'outbox_id', 'instruction_id', 'participant_id', 'sequence_id', 'idempotency_key', 'rail_type',
                'state', 'created_at', 'error_code', 'error_message', 'kind', 'applied_at', 'applied_by'
            )
    ),
    NULL, 'every column whose name does not say it all has a comment'
);
SELECT payment_outbox_proof.is(
    (
        SELECT string_agg(object_name, ', ' ORDER BY object_name)
        FROM (
            SELECT c.relname AS object_name FROM pg_catalog.pg_class AS c
            WHERE c.relnamespace = 'payment_outbox'::regnamespace
            UNION ALL
            SELECT c.conname FROM pg_catalog.pg_constraint AS c
            WHERE c.connamespace = 'payment_outbox'::regnamespace
            UNION ALL
            SELECT p.proname FROM pg_catalog.pg_proc AS p
            WHERE p.pronamespace = 'payment_outbox'::regnamespace
        ) AS named_objects
        WHERE octet_length(object_name) >= 63
    ),
    NULL, 'no name reaches 63 bytes, where PostgreSQL silently truncates it'
);
