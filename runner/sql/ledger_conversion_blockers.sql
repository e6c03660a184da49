-- Who holds a lock on the ledger or on the conversion's staged table, but this session: what a
-- conversion step that gave up on a lock waited behind.
SELECT DISTINCT ON (b.pid)
    b.pid AS blocker_pid,
    coalesce(b.application_name, '') AS blocker_application_name,
    coalesce(b.usename::text, '') AS blocker_user,
    coalesce(b.state, 'unknown') AS blocker_state,
    extract(EPOCH FROM clock_timestamp() - b.xact_start)::numeric(12, 1) AS blocker_transaction_seconds
FROM pg_catalog.pg_locks AS l
INNER JOIN pg_catalog.pg_stat_activity AS b ON l.pid = b.pid
WHERE
    l.granted
    AND l.pid <> pg_catalog.pg_backend_pid()
    AND l.relation IN (
        to_regclass('payment_outbox.payment_outbox_attempts'),
        to_regclass('payment_outbox.payment_outbox_attempts_new')
    )
ORDER BY b.pid;
