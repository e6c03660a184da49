-- Bench only: the baseline table, a comparable row with nothing but a unique text key.
CREATE SCHEMA outbox_bench;

CREATE TABLE outbox_bench.baseline_insert (
    row_id uuid NOT NULL DEFAULT gen_random_uuid(),
    instruction_id text NOT NULL,
    participant_id text NOT NULL,
    idempotency_key text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT baseline_insert_pkey PRIMARY KEY (row_id),
    CONSTRAINT baseline_insert_instruction_id_idempotency_key_key UNIQUE (instruction_id, idempotency_key)
);

COMMENT ON TABLE outbox_bench.baseline_insert IS
'outbox bench: a plain single-row INSERT of a row like an outbox item, the baseline the ratios use.';

GRANT USAGE ON SCHEMA outbox_bench TO outbox_ingest;
GRANT INSERT ON outbox_bench.baseline_insert TO outbox_ingest;
