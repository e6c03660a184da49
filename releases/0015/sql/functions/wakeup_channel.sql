-- wakeup_channel: the one name of the channel enqueues NOTIFY and workers LISTEN on.
CREATE OR REPLACE FUNCTION payment_outbox.wakeup_channel()
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
BEGIN ATOMIC
    SELECT 'payment_outbox_enqueued';
END;

COMMENT ON FUNCTION payment_outbox.wakeup_channel() IS
'The channel of the enqueue notification (tables/0015): a worker runs LISTEN on it; the trigger on '
'payment_outbox_pending sends NOTIFY on it, with an empty payload, when notify_on_enqueue is on.';

REVOKE ALL ON FUNCTION payment_outbox.wakeup_channel() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.wakeup_channel() TO outbox_executor;
