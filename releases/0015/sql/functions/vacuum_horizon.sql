-- vacuum_horizon: the oldest transaction of each kind that holds back vacuum on this server.
CREATE OR REPLACE FUNCTION payment_outbox.vacuum_horizon()
RETURNS TABLE (
    horizon_source text,
    holder text,
    complete boolean,
    xmin_age bigint,
    age_seconds double precision
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
BEGIN ATOMIC
    -- Sessions: a snapshot (backend_xmin) or a transaction id (backend_xid) keeps every row
    -- version newer than it. Other roles' sessions show these columns only to a superuser or a
    -- member of pg_read_all_stats: `complete` says whether the owner of this function is one.
    -- Prepared transactions hold their xid until COMMIT PREPARED or ROLLBACK PREPARED, across
    -- restarts; a replication slot's xmin (a standby with hot_standby_feedback, or a slot nobody
    -- reads any more) for as long as the slot exists. Every role may read those two views.
    WITH sessions AS (
        SELECT
            'session' AS horizon_source,
            greatest(pg_catalog.age(a.backend_xmin), pg_catalog.age(a.backend_xid)) AS xmin_age,
            extract(EPOCH FROM pg_catalog.now() - a.xact_start) AS age_seconds,
            'pid ' || a.pid AS holder
        FROM pg_catalog.pg_stat_activity AS a
        WHERE
            a.pid <> pg_catalog.pg_backend_pid()
            AND (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL)
        ORDER BY xmin_age DESC
        LIMIT 1
    ),

    prepared AS (
        SELECT
            'prepared_transaction' AS horizon_source,
            pg_catalog.age(p.transaction) AS xmin_age,
            extract(EPOCH FROM pg_catalog.now() - p.prepared) AS age_seconds,
            'gid ' || p.gid AS holder
        FROM pg_catalog.pg_prepared_xacts AS p
        ORDER BY xmin_age DESC
        LIMIT 1
    ),

    slots AS (
        SELECT
            'replication_slot' AS horizon_source,
            pg_catalog.age(r.xmin) AS xmin_age,
            NULL::numeric AS age_seconds,
            'slot ' || r.slot_name AS holder
        FROM pg_catalog.pg_replication_slots AS r
        WHERE r.xmin IS NOT NULL
        ORDER BY xmin_age DESC
        LIMIT 1
    ),

    found AS (
        SELECT * FROM sessions
        UNION ALL
        SELECT * FROM prepared
        UNION ALL
        SELECT * FROM slots
    )

    SELECT
        k.horizon_source,
        f.holder,
        k.complete,
        coalesce(f.xmin_age, 0)::bigint AS xmin_age,
        coalesce(f.age_seconds, 0)::double precision AS age_seconds
    FROM (
        VALUES
        ('session', pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')),
        ('prepared_transaction', TRUE),
        ('replication_slot', TRUE)
    ) AS k (horizon_source, complete)
    LEFT JOIN found AS f ON k.horizon_source = f.horizon_source
    ORDER BY k.horizon_source;
END;

COMMENT ON FUNCTION payment_outbox.vacuum_horizon() IS
'What holds back vacuum (and so makes the hot queue''s dead rows pile up and SKIP LOCKED claims '
'slow): for each horizon_source (session, prepared_transaction, replication_slot) the age in '
'transactions of its oldest horizon, its age in seconds where the server records one, and who '
'holds it (a pid, a gid, a slot name). Zero when nothing of that kind holds one. complete is '
'false for session when the function''s owner is neither a superuser nor a member of '
'pg_read_all_stats: other roles'' sessions are then invisible to it. Readable by outbox_readonly.';

REVOKE ALL ON FUNCTION payment_outbox.vacuum_horizon() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.vacuum_horizon() TO outbox_readonly, outbox_repair;
