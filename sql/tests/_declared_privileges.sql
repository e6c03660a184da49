-- The declared privilege matrix: every privilege a runtime role holds in the schema, and nothing else.
-- One declaration, two readers: the privilege_matrix proof and the evidence guardrails
-- (runner/evidence/guardrails.py). Creates a temporary table, dropped at the end of the transaction.
CREATE TEMPORARY TABLE declared_privileges (grantee text, object_name text, privilege text) ON COMMIT DROP;
INSERT INTO declared_privileges VALUES
('outbox_ingest', 'schema payment_outbox', 'USAGE'),
('outbox_executor', 'schema payment_outbox', 'USAGE'),
('outbox_repair', 'schema payment_outbox', 'USAGE'),
('outbox_readonly', 'schema payment_outbox', 'USAGE'),
('outbox_auditor', 'schema payment_outbox', 'USAGE'),
('outbox_operator', 'schema payment_outbox', 'USAGE'),
('outbox_ingest', 'function enqueue_payment_outbox(text,text,text,text,jsonb)', 'EXECUTE'),
('outbox_ingest', 'function enqueue_payment_outbox_batch(jsonb)', 'EXECUTE'),
('outbox_executor', 'function claim_outbox_batch(text,integer)', 'EXECUTE'),
(
    'outbox_executor',
    'function complete_outbox_attempt(uuid,integer,payment_outbox.outbox_attempt_state,text,text,text,text)',
    'EXECUTE'
),
(
    'outbox_executor',
    'function complete_outbox_attempts(text,uuid[],integer[],payment_outbox.outbox_attempt_state[],text[],text[],text[])',
    'EXECUTE'
),
('outbox_repair', 'function repair_zombie_attempts(integer,integer)', 'EXECUTE'),
('outbox_repair', 'function list_stuck_dispatching(integer)', 'EXECUTE'),
('outbox_readonly', 'function list_stuck_dispatching(integer)', 'EXECUTE'),
('outbox_readonly', 'function check_invariants()', 'EXECUTE'),
('outbox_auditor', 'function check_invariants()', 'EXECUTE'),
('outbox_readonly', 'function item_history(uuid)', 'EXECUTE'),
('outbox_auditor', 'function item_history(uuid)', 'EXECUTE'),
('outbox_readonly', 'function item_history(text,text)', 'EXECUTE'),
('outbox_auditor', 'function item_history(text,text)', 'EXECUTE'),
('outbox_readonly', 'view payment_outbox_in_flight', 'SELECT'),
('outbox_repair', 'view payment_outbox_in_flight', 'SELECT'),
('outbox_readonly', 'view payment_outbox_queue_metrics', 'SELECT'),
('outbox_repair', 'view payment_outbox_queue_metrics', 'SELECT'),
('outbox_readonly', 'view payment_outbox_relation_sizes', 'SELECT'),
('outbox_repair', 'view payment_outbox_relation_sizes', 'SELECT'),
('outbox_readonly', 'function vacuum_horizon()', 'EXECUTE'),
('outbox_repair', 'function vacuum_horizon()', 'EXECUTE'),
('outbox_auditor', 'table payment_outbox_attempts', 'SELECT'),
('outbox_operator', 'function set_outbox_settings(integer)', 'EXECUTE'),
('outbox_operator', 'table payment_outbox_settings', 'SELECT'),
('outbox_operator', 'table payment_outbox_settings_history', 'SELECT'),
('outbox_auditor', 'table payment_outbox_settings', 'SELECT'),
('outbox_auditor', 'table payment_outbox_settings_history', 'SELECT'),
('outbox_auditor', 'table payment_outbox_key_conflicts', 'SELECT'),
('outbox_operator', 'function ensure_attempt_partitions(interval)', 'EXECUTE'),
('outbox_operator', 'function attempt_partition_retention(interval)', 'EXECUTE'),
('outbox_operator', 'table payment_outbox_attempt_partitions', 'SELECT'),
('outbox_auditor', 'table payment_outbox_attempt_partitions', 'SELECT'),
('outbox_operator', 'table payment_outbox_retired_sequences', 'SELECT'),
('outbox_auditor', 'table payment_outbox_retired_sequences', 'SELECT');
