-- The runtime roles of payment-outbox: created when missing, never altered when present.
-- Roles belong to the whole cluster, so two databases migrated at once may race here:
-- the loser of that race sees duplicate_object and carries on.
DO $roles$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY[
        'outbox_ingest', 'outbox_executor', 'outbox_repair', 'outbox_readonly', 'outbox_auditor',
        'outbox_operator'
    ] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$roles$;
