-- Whether a ledger partition is attached: NULL when it is not (detached or gone), else whether
-- its detach is pending (an interrupted DETACH ... CONCURRENTLY, finished with FINALIZE).
SELECT (
    SELECT h.inhdetachpending
    FROM pg_catalog.pg_inherits AS h
    WHERE h.inhrelid = to_regclass('payment_outbox.' || quote_ident(%(partition_name)s))
) AS detach_pending;
