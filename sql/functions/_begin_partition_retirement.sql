-- _begin_partition_retirement: retention's first step on a partition: checks every item of its range is terminal, records its items, marks it detaching.
CREATE OR REPLACE FUNCTION payment_outbox._begin_partition_retirement(p_partition text)
RETURNS TABLE (items bigint, attempts bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, payment_outbox, pg_temp
-- The SHARE lock on pending below waits for every open transaction that wrote to pending: a short
-- wait, never long enough to queue the hot path behind a forgotten transaction (55P03 then; the
-- run keeps the partition and names who held it).
SET lock_timeout = '5s'
AS $$
#variable_conflict use_column
DECLARE
    v_partition payment_outbox.payment_outbox_attempt_partitions%ROWTYPE;
    v_unfinished uuid[];
    v_items bigint;
    v_attempts bigint;
BEGIN
    SELECT * INTO v_partition
    FROM payment_outbox.payment_outbox_attempt_partitions AS r
    WHERE r.partition_name = p_partition
    FOR UPDATE;
    IF NOT FOUND OR v_partition.state NOT IN ('attached', 'detaching') THEN
        RAISE EXCEPTION 'ledger partition % is not attached', p_partition
            USING ERRCODE = 'PO033',
                  HINT = 'payment_outbox_attempt_partitions lists the partitions and their state.';
    END IF;
    IF v_partition.state = 'detaching' THEN
        items := v_partition.items;
        attempts := v_partition.attempts;
        RETURN NEXT;
        RETURN;
    END IF;
    -- Every transaction that inserted into pending has committed or rolled back, and none can
    -- insert until this one commits the mark below: an enqueue that checked the month's partition
    -- before the mark is seen here (and keeps it); one after the mark refuses (PO035).
    LOCK TABLE payment_outbox.payment_outbox_pending IN SHARE MODE;
    SELECT (array_agg(p.outbox_id ORDER BY p.created_at, p.outbox_id))[1:100] INTO v_unfinished
    FROM payment_outbox.payment_outbox_pending AS p
    WHERE p.created_at >= coalesce(v_partition.range_from, '-infinity') AND p.created_at < v_partition.range_to;
    IF v_unfinished IS NOT NULL THEN
        RAISE EXCEPTION 'ledger partition % holds unfinished items: %', p_partition, v_unfinished
            USING ERRCODE = 'PO033',
                  HINT = 'A partition is retired only when every item created in its range is terminal.';
    END IF;
    EXECUTE format(
        'INSERT INTO payment_outbox.payment_outbox_retired_sequences (partition_name, participant_id, items, max_sequence_id) SELECT %L, a.participant_id, count(DISTINCT a.outbox_id), max(a.sequence_id) FROM payment_outbox.%I AS a GROUP BY a.participant_id',
        p_partition, p_partition
    );
    EXECUTE format('SELECT count(DISTINCT a.outbox_id), count(*) FROM payment_outbox.%I AS a', p_partition)
    INTO v_items, v_attempts;
    UPDATE payment_outbox.payment_outbox_attempt_partitions AS r
    SET state = 'detaching', items = v_items, attempts = v_attempts
    WHERE r.partition_name = p_partition;
    items := v_items;
    attempts := v_attempts;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION payment_outbox._begin_partition_retirement(text) IS
'Retention''s first step on a ledger partition (runner/retention.py, as the owner): refuses (PO033) '
'a partition not attached or with an unfinished item (one still in pending) created in its range, '
'naming up to 100; records per participant the sequence ids its items held; marks it detaching. '
'Re-run on a partition already detaching, returns what was recorded.';

REVOKE ALL ON FUNCTION payment_outbox._begin_partition_retirement(text) FROM PUBLIC;
