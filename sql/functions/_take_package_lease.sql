-- _take_package_lease: the lease on one job's row of payment_outbox_locks for this session, across transactions, or PO036 naming who holds it.
CREATE OR REPLACE FUNCTION payment_outbox._take_package_lease(p_lock_name text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
DECLARE
    v_lock payment_outbox.payment_outbox_locks%ROWTYPE;
BEGIN
    -- A lease is free when no session holds it, or when its session has ended: no backend has its
    -- pid, or one has but started later (the pid was reused). A row lock for a whole run would keep
    -- a transaction open, which CREATE INDEX CONCURRENTLY in the conversion waits for.
    UPDATE payment_outbox.payment_outbox_locks AS l
    SET
        holder_pid = pg_catalog.pg_backend_pid(),
        holder_backend_start = (
            SELECT a.backend_start FROM pg_catalog.pg_stat_activity AS a WHERE a.pid = pg_catalog.pg_backend_pid()
        ),
        holder_user = session_user,
        holder_application = pg_catalog.current_setting('application_name'),
        held_since = pg_catalog.clock_timestamp()
    WHERE
        l.lock_name = p_lock_name
        AND (
            l.holder_pid IS NULL
            OR l.holder_pid = pg_catalog.pg_backend_pid()
            OR NOT EXISTS (
                SELECT FROM pg_catalog.pg_stat_activity AS a
                WHERE
                    a.pid = l.holder_pid
                    -- NULL when the holder is another login's session this one may not inspect:
                    -- then the pid alone keeps the lease.
                    AND (a.backend_start IS NULL OR a.backend_start = l.holder_backend_start)
            )
        );
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO v_lock FROM payment_outbox.payment_outbox_locks AS l WHERE l.lock_name = p_lock_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the package lock % does not exist', p_lock_name
            USING ERRCODE = 'PO036', HINT = 'tables/0017 creates it: run outbox migrate.';
    END IF;
    RAISE EXCEPTION 'the package lock % is held by pid % (%, %, since %)', p_lock_name, v_lock.holder_pid,
        v_lock.holder_user, coalesce(nullif(v_lock.holder_application, ''), 'no application_name'), v_lock.held_since
        USING ERRCODE = 'PO036',
              HINT = 'Another run of the same job is under way: let it finish, or end that session (pg_terminate_backend).';
END;
$$;

COMMENT ON FUNCTION payment_outbox._take_package_lease(text) IS
'Takes the lease on the row p_lock_name of payment_outbox_locks for this session (it lasts until '
'_end_package_lease() or the end of the session, across transactions), or raises PO036 naming the '
'holding pid, login, application and since when. Owner only: outbox retention and the ledger '
'conversion call it.';

REVOKE ALL ON FUNCTION payment_outbox._take_package_lease(text) FROM PUBLIC;
