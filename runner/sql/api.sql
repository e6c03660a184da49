-- The package's SQL API as the runner and the tests call it: one named query per call,
-- loaded by runner/client.py. A block starts with `-- name: <name>` and a line saying what it does.

-- name: enqueue
-- Creates the item of (instruction_id, idempotency_key), or returns the one the key holds.
SELECT
    outbox_id,
    sequence_id,
    created_at,
    state
FROM payment_outbox.enqueue_payment_outbox(
    %(instruction_id)s,
    %(participant_id)s,
    %(idempotency_key)s,
    %(rail_type)s,
    %(payload)s
);

-- name: claim
-- Claims up to batch_size due items, each with its new DISPATCHING attempt.
SELECT
    outbox_id,
    attempt_no,
    instruction_id,
    participant_id,
    sequence_id,
    idempotency_key,
    rail_type,
    payload,
    attempt_count,
    claimed_at
FROM payment_outbox.claim_outbox_batch(%(worker_id)s, %(batch_size)s);

-- name: complete
-- Completes one claimed attempt, fenced by its attempt_no and, when given, the worker holding it.
SELECT
    attempt_no,
    state::text AS state
FROM payment_outbox.complete_outbox_attempt(
    %(outbox_id)s,
    %(attempt_no)s,
    %(state)s::payment_outbox.outbox_attempt_state,
    %(error_code)s,
    %(error_message)s,
    %(rail_reference)s,
    %(worker_id)s
);

-- name: complete_without_worker
-- The six-argument completion of releases before p_worker_id: fenced by attempt_no alone.
SELECT
    attempt_no,
    state::text AS state
FROM payment_outbox.complete_outbox_attempt(
    %(outbox_id)s,
    %(attempt_no)s,
    %(state)s::payment_outbox.outbox_attempt_state,
    %(error_code)s,
    %(error_message)s,
    %(rail_reference)s
);

-- name: repair
-- One repair batch: requeues (or fails, at the maximum attempt count) claims older than the threshold.
SELECT
    outbox_id,
    attempt_no,
    previous_state,
    new_state,
    stale_seconds,
    worker_id
FROM payment_outbox.repair_zombie_attempts(%(threshold_seconds)s, %(batch_size)s);

-- name: list_stuck
-- The in-flight items whose claim is older than the threshold.
SELECT
    outbox_id,
    attempt_no,
    worker_id
FROM payment_outbox.list_stuck_dispatching(%(threshold_seconds)s)
ORDER BY outbox_id;

-- name: check_invariants
-- One row per violated invariant; none when the outbox is consistent.
SELECT
    invariant,
    outbox_id,
    participant_id,
    detail
FROM payment_outbox.check_invariants();

-- name: queue_metrics
-- The queue's gauges in one row.
SELECT
    queue_depth,
    due_now,
    in_flight,
    oldest_due_age_seconds
FROM payment_outbox.payment_outbox_queue_metrics;

-- name: in_flight
-- Every claimed item not yet completed.
SELECT
    outbox_id,
    attempt_no,
    worker_id
FROM payment_outbox.payment_outbox_in_flight
ORDER BY outbox_id;

-- name: ledger
-- The ledger rows of one item (or of every item when outbox_id is null), in order.
SELECT
    outbox_id,
    attempt_no,
    state::text AS state,
    worker_id,
    error_code
FROM payment_outbox.payment_outbox_attempts
WHERE %(outbox_id)s::uuid IS NULL OR outbox_id = %(outbox_id)s::uuid
ORDER BY outbox_id, attempt_no;

-- name: set_settings
-- Changes the package's settings (outbox_operator); a null leaves its setting as it is.
SELECT
    max_attempt_count,
    notify_on_enqueue,
    updated_at,
    updated_by
FROM payment_outbox.set_outbox_settings(
    p_max_attempt_count => %(max_attempt_count)s, p_notify_on_enqueue => %(notify_on_enqueue)s
);

-- name: wakeup_channel
-- The channel a worker LISTENs on for enqueue notifications (outbox_executor).
SELECT payment_outbox.wakeup_channel() AS channel;

-- name: settings_history
-- Every change of the package's settings, oldest first (outbox_operator, outbox_auditor).
SELECT
    setting,
    old_value,
    new_value,
    changed_by
FROM payment_outbox.payment_outbox_settings_history
ORDER BY changed_at, history_id;

-- name: item_history
-- Every state change of one item, by id, in order (outbox_readonly, outbox_auditor).
SELECT
    outbox_id,
    instruction_id,
    idempotency_key,
    participant_id,
    sequence_id,
    rail_type,
    attempt_no,
    state,
    changed_at,
    worker_id,
    claimed_at,
    completed_at,
    latency_ms,
    error_code,
    error_message,
    rail_reference,
    actor,
    reason
FROM payment_outbox.item_history(%(outbox_id)s::uuid);

-- name: item_history_by_key
-- Every state change of the item an (instruction_id, idempotency_key) holds, in order.
SELECT
    outbox_id,
    instruction_id,
    idempotency_key,
    participant_id,
    sequence_id,
    rail_type,
    attempt_no,
    state,
    changed_at,
    worker_id,
    claimed_at,
    completed_at,
    latency_ms,
    error_code,
    error_message,
    rail_reference,
    actor,
    reason
FROM payment_outbox.item_history(%(instruction_id)s::text, %(idempotency_key)s::text);

-- name: enqueue_batch
-- Enqueues a payment file (a JSON array of items): one row per item, in file order.
SELECT
    item_no,
    outbox_id,
    sequence_id,
    created_at,
    state
FROM payment_outbox.enqueue_payment_outbox_batch(%(items)s);

-- name: complete_batch
-- Completes many claimed attempts of one worker: one row per completion, completed or stale.
SELECT
    item_no,
    outbox_id,
    attempt_no,
    state::text AS state,
    outcome
FROM payment_outbox.complete_outbox_attempts(
    %(worker_id)s,
    %(outbox_ids)s::uuid[],
    %(attempt_nos)s::integer[],
    %(states)s::payment_outbox.outbox_attempt_state[],
    %(error_codes)s::text[],
    %(error_messages)s::text[],
    %(rail_references)s::text[]
);

-- name: key_conflicts
-- Every item of a key found held by two items when tables/0010 reconciled the register (outbox_auditor).
SELECT
    instruction_id,
    idempotency_key,
    outbox_id,
    item_created_at,
    item_state,
    registered,
    detected_at
FROM payment_outbox.payment_outbox_key_conflicts
ORDER BY instruction_id, idempotency_key, registered, outbox_id;

-- name: ensure_partitions
-- Creates the ledger's missing monthly partitions up to `ahead` ahead (outbox_operator).
SELECT
    partition_name,
    range_from,
    range_to
FROM payment_outbox.ensure_attempt_partitions(%(ahead)s::interval);

-- name: retention_plan
-- What retention would do with each ledger partition older than the window (outbox_operator).
SELECT
    partition_name,
    range_from,
    range_to,
    action,
    unfinished_items,
    unfinished_outbox_ids
FROM payment_outbox.attempt_partition_retention(%(retention_window)s::interval);

-- name: begin_retirement
-- Retention's first step on a partition: every item terminal, items recorded, marked detaching (the owner).
SELECT
    items,
    attempts
FROM payment_outbox._begin_partition_retirement(%(partition_name)s);

-- name: retire_partition
-- Retention's last step on a detached partition: dropped and recorded retired (the owner).
SELECT payment_outbox._retire_partition(%(partition_name)s, %(exported_to)s) AS retired;

-- name: attempt_partitions
-- The ledger's partitions, present and retired, oldest first (outbox_operator, outbox_auditor).
SELECT
    partition_name,
    range_from,
    range_to,
    state,
    items,
    attempts,
    exported_to,
    retired_at,
    retired_by
FROM payment_outbox.payment_outbox_attempt_partitions
ORDER BY range_to, partition_name;

-- name: quarantine_list
-- Every QUARANTINED item, oldest quarantine first (outbox_operator, outbox_readonly).
SELECT
    outbox_id,
    instruction_id,
    idempotency_key,
    participant_id,
    sequence_id,
    rail_type,
    attempt_count,
    quarantined_at,
    quarantine_reason
FROM payment_outbox.list_quarantined();

-- name: quarantine_release
-- Makes a QUARANTINED item due again with a fresh attempt budget, recorded with actor and reason (outbox_operator).
SELECT
    outbox_id,
    attempt_no,
    state::text AS state
FROM payment_outbox.release_quarantined(%(outbox_id)s::uuid, %(reason)s::text, %(actor)s::text);

-- name: quarantine_fail
-- Records a QUARANTINED item FAILED (terminal), with actor and reason (outbox_operator).
SELECT
    outbox_id,
    attempt_no,
    state::text AS state
FROM payment_outbox.fail_quarantined(%(outbox_id)s::uuid, %(reason)s::text, %(actor)s::text);

-- name: pause_rail
-- Pauses a rail (outbox_operator): claims take none of its items until it is resumed.
SELECT
    rail_type,
    paused,
    was_paused,
    items_changed
FROM payment_outbox.pause_rail(%(rail_type)s, %(reason)s, %(actor)s);

-- name: resume_rail
-- Resumes a rail (outbox_operator): its items are claimable again, in their due order.
SELECT
    rail_type,
    paused,
    was_paused,
    items_changed
FROM payment_outbox.resume_rail(%(rail_type)s, %(actor)s);

-- name: paused_rails
-- The rails paused now, with reason, actor, since when and their waiting and due items.
SELECT
    rail_type,
    reason,
    actor,
    changed_by,
    paused_since,
    waiting_items,
    due_items
FROM payment_outbox.payment_outbox_paused_rails
ORDER BY rail_type;

-- name: rail_history
-- Every pause and resume, oldest first (outbox_operator, outbox_auditor).
SELECT
    history_id,
    rail_type,
    request,
    was_paused,
    reason,
    actor,
    items_changed,
    changed_at,
    changed_by
FROM payment_outbox.payment_outbox_rail_history
ORDER BY history_id;

-- name: buckets
-- On Citus: the claim buckets, one per shard, with the key a bucket's calls are routed by.
SELECT
    bucket,
    bucket_key
FROM payment_outbox.outbox_buckets();

-- name: claim_bucket
-- On Citus: claims up to batch_size due items of one bucket, on the node holding it.
SELECT
    outbox_id,
    attempt_no,
    instruction_id,
    participant_id,
    sequence_id,
    idempotency_key,
    rail_type,
    payload,
    attempt_count,
    claimed_at
FROM payment_outbox.claim_outbox_bucket(%(bucket_key)s, %(worker_id)s, %(batch_size)s);

-- name: complete_participant
-- On Citus: completes one claimed attempt of the participant's item, on the node holding it.
SELECT
    attempt_no,
    state::text AS state
FROM payment_outbox.complete_participant_attempt(
    %(participant_id)s,
    %(outbox_id)s,
    %(attempt_no)s,
    %(state)s::payment_outbox.outbox_attempt_state,
    %(error_code)s,
    %(error_message)s,
    %(rail_reference)s,
    %(worker_id)s
);

-- name: repair_bucket
-- On Citus: requeues up to batch_size claims of one bucket older than threshold_seconds.
SELECT
    outbox_id,
    attempt_no,
    previous_state,
    new_state,
    stale_seconds,
    worker_id
FROM payment_outbox.repair_zombie_bucket(%(bucket_key)s, %(threshold_seconds)s, %(batch_size)s);

-- name: check_bucket_invariants
-- On Citus: the invariants check_invariants() checks, for one bucket, on the node holding it.
SELECT
    invariant,
    outbox_id,
    participant_id,
    detail
FROM payment_outbox.check_bucket_invariants(%(bucket_key)s);
