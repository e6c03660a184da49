-- Repair without a process: pg_cron runs the zombie repair inside the database every minute.
--
-- Needs the pg_cron extension (Debian: apt-get install postgresql-15-cron) loaded at server start
-- and pointed at the outbox's database, in postgresql.conf (a restart):
--
--     shared_preload_libraries = 'pg_cron'
--     cron.database_name = 'payment_outbox'      -- the database that holds the payment_outbox schema
--     cron.use_background_workers = on           -- jobs run in a background worker: no login, no password
--
-- Then, as a superuser, in that database: psql -d payment_outbox -f deploy/pg_cron/repair_schedule.sql
-- Running it again changes nothing but the job's text (same job name, same user).
--
-- The job acts as outbox_repair_cron, a login that holds only outbox_repair: it can repair, and
-- nothing else. The threshold (120 seconds, the default of `outbox repair`) is written into the
-- job and read once per run: change it with cron.alter_job, never with a session setting. Each
-- run repairs batches of 1000 until a short one, in one transaction, and writes one JSON object per
-- repaired item and one per run to the server log (LOG level), with the field names of `outbox
-- repair`'s log lines. A run's outcome is in cron.job_run_details too.
--
-- Stop it: SELECT cron.unschedule('payment-outbox-repair');
CREATE EXTENSION IF NOT EXISTS pg_cron;

DO $role$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'outbox_repair_cron') THEN
        CREATE ROLE outbox_repair_cron LOGIN;
    END IF;
END
$role$;
GRANT outbox_repair TO outbox_repair_cron;

SELECT cron.schedule_in_database(
    'payment-outbox-repair',
    '* * * * *',
    $job$
DO $repair$
DECLARE
    v_threshold_seconds CONSTANT integer := 120;
    v_batch_size CONSTANT integer := 1000;
    v_item record;
    v_in_batch integer;
    v_requeued integer := 0;
    v_other integer := 0;
    v_started timestamptz := clock_timestamp();
BEGIN
    LOOP
        v_in_batch := 0;
        FOR v_item IN SELECT * FROM payment_outbox.repair_zombie_attempts(v_threshold_seconds, v_batch_size) LOOP
            v_in_batch := v_in_batch + 1;
            IF v_item.new_state = 'ZOMBIE_REQUEUE' THEN
                v_requeued := v_requeued + 1;
            ELSE
                v_other := v_other + 1;
            END IF;
            RAISE LOG '%', json_build_object(
                'event', CASE v_item.new_state WHEN 'ZOMBIE_REQUEUE' THEN 'zombie_requeued'
                    ELSE 'zombie_' || lower(v_item.new_state) END,
                'source', 'pg_cron', 'outbox_id', v_item.outbox_id, 'attempt_no', v_item.attempt_no,
                'previous_state', v_item.previous_state, 'new_state', v_item.new_state,
                'threshold_seconds', v_threshold_seconds, 'stale_seconds', v_item.stale_seconds,
                'worker_id', v_item.worker_id
            );
        END LOOP;
        EXIT WHEN v_in_batch < v_batch_size;
    END LOOP;
    RAISE LOG '%', json_build_object(
        'event', 'repair_cycle', 'source', 'pg_cron', 'threshold_seconds', v_threshold_seconds,
        'zombies_requeued', v_requeued, 'zombies_not_requeued', v_other,
        'duration_seconds', round(extract(EPOCH FROM clock_timestamp() - v_started)::numeric, 3)
    );
END
$repair$
$job$,
    current_database(),
    'outbox_repair_cron'
);
