-- The backends a backend waits on: a cycle among the spec's sessions is a deadlock.
SELECT pg_catalog.pg_blocking_pids(%(pid)s) AS blockers;
