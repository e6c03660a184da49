-- What the migrating backend waits for right now: each lock it has not been granted, with the
-- backends that hold or queue ahead of it (pg_blocking_pids) and what they are doing.
SELECT
    w.locktype,
    w.mode,
    b.pid AS blocker_pid,
    coalesce(w.relation::regclass::text, w.locktype) AS locked_object,
    coalesce(b.application_name, '') AS blocker_application_name,
    coalesce(b.usename::text, '') AS blocker_user,
    coalesce(b.state, 'unknown') AS blocker_state,
    extract(EPOCH FROM clock_timestamp() - b.xact_start)::numeric(12, 1) AS blocker_transaction_seconds
FROM pg_catalog.pg_locks AS w
CROSS JOIN LATERAL unnest(pg_catalog.pg_blocking_pids(w.pid)) AS blocker (blocker_pid)
LEFT JOIN pg_catalog.pg_stat_activity AS b ON blocker.blocker_pid = b.pid
WHERE w.pid = (SELECT %(pid)s::integer) AND NOT w.granted
ORDER BY b.pid;
