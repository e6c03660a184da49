-- Whether a backend waits on a lock held by one of the given backends (the spec's own sessions).
SELECT pg_catalog.pg_blocking_pids(%(pid)s) && %(session_pids)s::integer[] AS blocked;
