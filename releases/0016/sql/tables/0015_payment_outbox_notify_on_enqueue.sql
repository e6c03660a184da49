-- Prompt wake-up, opt-in: an operator setting and a statement trigger that NOTIFYs listening workers.
-- Every NOTIFY takes a cluster-wide lock at commit, so committing enqueues queue behind one another
-- while it is on: off by default, switched on by outbox_operator with set_outbox_settings(), never by
-- a session setting. Workers poll whether it is on or off; a notification only shortens their wait.
--
-- Locks first, in the order enqueue, claim and completion take them (pending, then the settings),
-- so this run never holds the settings while it waits for pending: each waits under the run's
-- lock_timeout. The settings row and its history change only through set_outbox_settings().
-- squawk-ignore require-lock-timeout, require-statement-timeout
LOCK TABLE payment_outbox.payment_outbox_pending IN SHARE ROW EXCLUSIVE MODE;
LOCK TABLE payment_outbox.payment_outbox_settings IN ACCESS EXCLUSIVE MODE;
LOCK TABLE payment_outbox.payment_outbox_settings_history IN ACCESS EXCLUSIVE MODE;

-- A constant default: PostgreSQL records it in the catalog and rewrites nothing.
ALTER TABLE payment_outbox.payment_outbox_settings
ADD COLUMN notify_on_enqueue boolean NOT NULL DEFAULT FALSE;

COMMENT ON COLUMN payment_outbox.payment_outbox_settings.notify_on_enqueue IS
'When true, every statement that inserts into payment_outbox_pending sends one NOTIFY on '
'payment_outbox.wakeup_channel() (payload empty), so a listening worker claims at once instead of '
'at its next poll. Off by default: NOTIFY serialises committing transactions on a global lock.';

-- The history names the settings it may hold: the new one joins the list, in one statement. The
-- table is a few rows long and locked above: validating at once holds nobody up.
ALTER TABLE payment_outbox.payment_outbox_settings_history
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT payment_outbox_settings_history_setting_known_check,
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT payment_outbox_settings_history_setting_known_check
CHECK (setting IN ('max_attempt_count', 'notify_on_enqueue'));

INSERT INTO payment_outbox.payment_outbox_settings_history (setting, old_value, new_value, note)
VALUES ('notify_on_enqueue', NULL, 'false', 'installed with the default');

-- Statement-level, and without a transition table: a disabled notification costs one call and one
-- read of the one-row settings table per INSERT statement, whatever its row count (a transition
-- table would copy every inserted row even while disabled). The payload is empty: every worker
-- claims from every rail, and NOTIFY folds identical notifications of one transaction into one,
-- so a transaction of many enqueues wakes the listeners once.
CREATE FUNCTION payment_outbox._notify_enqueued()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    IF (SELECT s.notify_on_enqueue FROM payment_outbox.payment_outbox_settings AS s) THEN
        PERFORM pg_catalog.pg_notify(payment_outbox.wakeup_channel(), '');
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION payment_outbox._notify_enqueued() IS
'Trigger function: one NOTIFY on payment_outbox.wakeup_channel(), empty payload, when '
'payment_outbox_settings.notify_on_enqueue is true; nothing otherwise.';

REVOKE ALL ON FUNCTION payment_outbox._notify_enqueued() FROM PUBLIC;

CREATE TRIGGER payment_outbox_pending_notify_enqueued
AFTER INSERT ON payment_outbox.payment_outbox_pending
FOR EACH STATEMENT EXECUTE FUNCTION payment_outbox._notify_enqueued();

COMMENT ON TRIGGER payment_outbox_pending_notify_enqueued ON payment_outbox.payment_outbox_pending IS
'Wakes listening workers after each statement that enqueues, when notify_on_enqueue is on. Items '
'requeued by repair or due again after a retry delay are found by polling, not notified.';
