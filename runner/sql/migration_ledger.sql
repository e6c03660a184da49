-- The migration ledger: created by the runner before any packaged file is applied.
CREATE SCHEMA IF NOT EXISTS payment_outbox;

COMMENT ON SCHEMA payment_outbox IS
'payment-outbox: a PostgreSQL-native payment outbox. Reach it only through its functions.';

CREATE TABLE IF NOT EXISTS payment_outbox.schema_migrations (
    file_name text NOT NULL,
    kind text NOT NULL,
    sha256 text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user,
    CONSTRAINT schema_migrations_pkey PRIMARY KEY (file_name),
    CONSTRAINT schema_migrations_kind_known_check CHECK (kind IN ('versioned', 'repeatable'))
);

COMMENT ON TABLE payment_outbox.schema_migrations IS
'One row per packaged SQL file applied by outbox migrate: versioned files once, repeatable files '
'(views, functions) re-applied when their checksum changes.';
COMMENT ON COLUMN payment_outbox.schema_migrations.file_name IS
'Path of the file below sql/, e.g. tables/0001_outbox_attempt_state.sql.';
COMMENT ON COLUMN payment_outbox.schema_migrations.sha256 IS
'sha256 of the file text with line endings normalised to LF.';
COMMENT ON INDEX payment_outbox.schema_migrations_pkey IS
'One ledger row per file.';
