-- _end_package_lease: gives up this session's lease on one job's row of payment_outbox_locks.
CREATE OR REPLACE FUNCTION payment_outbox._end_package_lease(p_lock_name text)
RETURNS void
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, payment_outbox, pg_temp
BEGIN ATOMIC
    UPDATE payment_outbox.payment_outbox_locks AS l
    SET holder_pid = NULL, holder_backend_start = NULL, holder_user = NULL, holder_application = NULL, held_since = NULL
    WHERE l.lock_name = p_lock_name AND l.holder_pid = pg_catalog.pg_backend_pid();
END;

COMMENT ON FUNCTION payment_outbox._end_package_lease(text) IS
'Ends this session''s lease on p_lock_name (nothing when another session holds it). Owner only.';

REVOKE ALL ON FUNCTION payment_outbox._end_package_lease(text) FROM PUBLIC;
