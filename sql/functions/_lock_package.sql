-- _lock_package: locks one job's row of payment_outbox_locks to the end of the transaction, or raises PO036 naming who holds it.
CREATE OR REPLACE FUNCTION payment_outbox._lock_package(p_lock_name text, p_wait_seconds double precision DEFAULT 5)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
DECLARE
    v_holder text;
    v_until timestamptz := pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_wait_seconds);
BEGIN
    -- SKIP LOCKED, polled, rather than a wait in an exception block: a row lock taken in a
    -- subtransaction carries the subtransaction's id, which pg_locks does not show, and the holder
    -- could not be named.
    LOOP
        PERFORM FROM payment_outbox.payment_outbox_locks AS l WHERE l.lock_name = p_lock_name FOR UPDATE SKIP LOCKED;
        IF FOUND THEN
            RETURN;
        END IF;
        IF NOT EXISTS (SELECT FROM payment_outbox.payment_outbox_locks AS l WHERE l.lock_name = p_lock_name) THEN
            RAISE EXCEPTION 'the package lock % does not exist', p_lock_name
                USING ERRCODE = 'PO036', HINT = 'tables/0017 creates it: run outbox migrate.';
        END IF;
        EXIT WHEN pg_catalog.clock_timestamp() >= v_until;
        PERFORM pg_catalog.pg_sleep(0.05);  -- the polling period; no lock is held meanwhile
    END LOOP;
    -- The holder's transaction id is the row's xmax; every transaction holds a lock on its own id,
    -- and pg_locks (unlike pg_stat_activity) shows it to any role: the holder's pid, or a prepared
    -- transaction's gid.
    SELECT coalesce(
        (
            SELECT format(
                'pid %s (%s, %s, transaction open since %s)', k.pid, coalesce(a.usename::text, '?'),
                coalesce(nullif(a.application_name, ''), 'no application_name'), coalesce(a.xact_start::text, '?')
            )
            FROM pg_catalog.pg_locks AS k
            LEFT JOIN pg_catalog.pg_stat_activity AS a ON k.pid = a.pid
            WHERE k.locktype = 'transactionid' AND k.transactionid = l.xmax AND k.granted AND k.pid IS NOT NULL
            LIMIT 1
        ),
        (
            SELECT format('the prepared transaction %L (owner %s, prepared %s)', x.gid, x.owner, x.prepared)
            FROM pg_catalog.pg_prepared_xacts AS x WHERE x.transaction = l.xmax
        ),
        'a transaction that has just ended'
    ) INTO v_holder
    FROM payment_outbox.payment_outbox_locks AS l WHERE l.lock_name = p_lock_name;
    RAISE EXCEPTION 'the package lock % is held by %', p_lock_name, v_holder
        USING ERRCODE = 'PO036',
              HINT = 'Another run of the same job is under way (or a session holds it open): let it finish, or end that session.';
END;
$$;

COMMENT ON FUNCTION payment_outbox._lock_package(text, double precision) IS
'Locks the row p_lock_name of payment_outbox_locks (FOR UPDATE) to the end of the transaction, '
'trying for up to p_wait_seconds; PO036 naming the holding '
'pid (user, application, since when) or prepared transaction when it cannot. Owner only: '
'ensure_attempt_partitions() calls it (runs of many transactions take a lease: _take_package_lease()).';

REVOKE ALL ON FUNCTION payment_outbox._lock_package(text, double precision) FROM PUBLIC;
