-- Package settings in a table of the package's own, changed only by outbox_operator, every change kept.
-- Until now the maximum attempt count was read with current_setting() in the caller's session, so
-- any runtime role could SET it (0 made repair record live claims FAILED; 'lots' made every
-- RETRYABLE completion and every repair fail with 22P02). A session setting no longer reaches
-- the package: set_outbox_settings() (functions/) is the only way to change a setting.
GRANT USAGE ON SCHEMA payment_outbox TO outbox_operator;

CREATE TABLE payment_outbox.payment_outbox_settings (
    singleton boolean NOT NULL DEFAULT TRUE,
    max_attempt_count integer NOT NULL DEFAULT 20,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT session_user,
    CONSTRAINT payment_outbox_settings_pkey PRIMARY KEY (singleton),
    CONSTRAINT payment_outbox_settings_singleton_check CHECK (singleton),
    CONSTRAINT payment_outbox_settings_max_attempt_count_in_range_check
    CHECK (max_attempt_count BETWEEN 2 AND 1000)
);

CREATE TABLE payment_outbox.payment_outbox_settings_history (
    history_id bigint GENERATED ALWAYS AS IDENTITY,
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text NOT NULL DEFAULT session_user,
    setting text NOT NULL,
    old_value text,
    new_value text NOT NULL,
    note text,
    CONSTRAINT payment_outbox_settings_history_pkey PRIMARY KEY (history_id),
    CONSTRAINT payment_outbox_settings_history_setting_known_check CHECK (setting IN ('max_attempt_count'))
);

-- The settings row is changed in place by set_outbox_settings(), never removed; its history is
-- append-only. Statement triggers, so the refusal does not depend on data; the one trigger
-- function of the append-only tables (tables/0009), its argument the hint.
CREATE TRIGGER payment_outbox_settings_kept
BEFORE DELETE ON payment_outbox.payment_outbox_settings
FOR EACH STATEMENT EXECUTE FUNCTION payment_outbox._reject_update_or_delete(
    'Change settings with payment_outbox.set_outbox_settings(); the settings row is never removed.'
);

CREATE TRIGGER payment_outbox_settings_history_append_only
BEFORE UPDATE OR DELETE ON payment_outbox.payment_outbox_settings_history
FOR EACH STATEMENT EXECUTE FUNCTION payment_outbox._reject_update_or_delete(
    'Change settings with payment_outbox.set_outbox_settings(); their history is kept for good.'
);

-- An upgrade keeps the maximum the database ran with: the database's (or the migrating role's)
-- payment_outbox.max_attempt_count, read once, here, by the owner; the default 20 when unset. A
-- value outside the new range stops the migration with nothing changed, rather than silently
-- changing how many times a payment is tried.
DO $seed$
DECLARE
    v_setting text := nullif(btrim(current_setting('payment_outbox.max_attempt_count', TRUE)), '');
    v_value integer := 20;
BEGIN
    IF v_setting IS NOT NULL THEN
        IF v_setting !~ '^[0-9]{1,4}$' OR v_setting::integer NOT BETWEEN 2 AND 1000 THEN
            RAISE EXCEPTION 'payment_outbox.max_attempt_count is %, not a whole number from 2 to 1000', v_setting
                USING ERRCODE = 'PO016',
                      HINT = 'ALTER DATABASE ... RESET payment_outbox.max_attempt_count (or set it within 2..1000), '
                      'then migrate again.';
        END IF;
        v_value := v_setting::integer;
    END IF;
    INSERT INTO payment_outbox.payment_outbox_settings (max_attempt_count) VALUES (v_value);
    INSERT INTO payment_outbox.payment_outbox_settings_history (setting, old_value, new_value, note)
    VALUES (
        'max_attempt_count', NULL, v_value::text,
        CASE
            WHEN v_setting IS NULL THEN 'installed with the default'
            ELSE 'seeded from the session setting payment_outbox.max_attempt_count at upgrade'
        END
    );
END
$seed$;

COMMENT ON TABLE payment_outbox.payment_outbox_settings IS
'The package''s settings: one row, typed, each value within a checked range. Changed only through '
'set_outbox_settings() (granted to outbox_operator); no session setting changes behaviour.';
COMMENT ON COLUMN payment_outbox.payment_outbox_settings.singleton IS
'Always true: the primary key on it allows one row.';
COMMENT ON COLUMN payment_outbox.payment_outbox_settings.max_attempt_count IS
'The attempt_no at which a RETRYABLE completion or a zombie requeue is recorded FAILED instead (2 to 1000).';
COMMENT ON COLUMN payment_outbox.payment_outbox_settings.updated_at IS
'When the latest change was made (the installation or upgrade, before any).';
COMMENT ON COLUMN payment_outbox.payment_outbox_settings.updated_by IS
'The login (session_user) that made the latest change.';
COMMENT ON INDEX payment_outbox.payment_outbox_settings_pkey IS
'One settings row.';
COMMENT ON TABLE payment_outbox.payment_outbox_settings_history IS
'Every change of a setting, append-only: who (the login), when, the old and the new value.';
COMMENT ON COLUMN payment_outbox.payment_outbox_settings_history.history_id IS
'Position of the change in the history.';
COMMENT ON COLUMN payment_outbox.payment_outbox_settings_history.changed_at IS
'When the change was made (its transaction''s start).';
COMMENT ON COLUMN payment_outbox.payment_outbox_settings_history.setting IS
'The setting changed: a column of payment_outbox_settings.';
COMMENT ON COLUMN payment_outbox.payment_outbox_settings_history.new_value IS
'The value after the change, as text.';
COMMENT ON COLUMN payment_outbox.payment_outbox_settings_history.changed_by IS
'The login (session_user) that made the change, whatever role it acted as.';
COMMENT ON COLUMN payment_outbox.payment_outbox_settings_history.old_value IS
'The value before the change; NULL for the value the package was installed or upgraded with.';
COMMENT ON COLUMN payment_outbox.payment_outbox_settings_history.note IS
'Where a value came from when no operator set it (installation, upgrade).';
COMMENT ON INDEX payment_outbox.payment_outbox_settings_history_pkey IS
'History rows in the order they were written.';
COMMENT ON TRIGGER payment_outbox_settings_kept ON payment_outbox.payment_outbox_settings IS
'Refuses DELETE of the settings row for everyone.';
COMMENT ON TRIGGER payment_outbox_settings_history_append_only
ON payment_outbox.payment_outbox_settings_history IS
'Refuses UPDATE and DELETE on the settings history for everyone.';

REVOKE ALL ON payment_outbox.payment_outbox_settings FROM PUBLIC;
REVOKE ALL ON payment_outbox.payment_outbox_settings_history FROM PUBLIC;
GRANT SELECT ON payment_outbox.payment_outbox_settings TO outbox_operator, outbox_auditor;
GRANT SELECT ON payment_outbox.payment_outbox_settings_history TO outbox_operator, outbox_auditor;
