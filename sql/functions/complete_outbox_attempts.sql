-- complete_outbox_attempts: records the outcomes of many claimed attempts of one worker in one call.
CREATE OR REPLACE FUNCTION payment_outbox.complete_outbox_attempts(
    p_worker_id text,
    p_outbox_ids uuid[],
    p_attempt_nos integer[],
    p_states payment_outbox.outbox_attempt_state[],
    p_error_codes text[] DEFAULT NULL,
    p_error_messages text[] DEFAULT NULL,
    p_rail_references text[] DEFAULT NULL
)
RETURNS TABLE (
    item_no integer,
    outbox_id uuid,
    attempt_no integer,
    state payment_outbox.outbox_attempt_state,
    outcome text
)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, payment_outbox, pg_temp
SET jit = off
AS $$
#variable_conflict use_column
-- Three statements whatever the batch's size: lock the current claims of this worker among the
-- attempts (by outbox_id, one order for every caller), write every outcome, return the rows.
-- Each attempt is fenced as complete_outbox_attempt fences it: only the current claim, held by
-- p_worker_id, matches; any other is stale and changes nothing.
DECLARE
    v_count integer := cardinality(p_outbox_ids);
    v_bad_no integer;
    v_locked_nos integer[];
    v_done_nos integer[];
    v_done_attempt_nos integer[];
    v_done_states payment_outbox.outbox_attempt_state[];
BEGIN
    PERFORM payment_outbox._require_argument('worker_id', p_worker_id);
    IF p_outbox_ids IS NULL
        OR cardinality(p_attempt_nos) IS DISTINCT FROM v_count
        OR cardinality(p_states) IS DISTINCT FROM v_count
        OR cardinality(coalesce(p_error_codes, p_outbox_ids::text[])) <> v_count
        OR cardinality(coalesce(p_error_messages, p_outbox_ids::text[])) <> v_count
        OR cardinality(coalesce(p_rail_references, p_outbox_ids::text[])) <> v_count THEN
        RAISE EXCEPTION 'the arrays of a batch completion must have one element per attempt (% outbox ids)',
            coalesce(v_count::text, 'null')
            USING ERRCODE = 'PO017',
                  HINT = 'Pass null error codes, messages and rail references as null elements, or omit the array.';
    END IF;
    PERFORM payment_outbox._limit_batch('p_outbox_ids', v_count);
    -- The checks below read the arrays by position from 1, as unnest() numbers their elements:
    -- an array with other bounds ('[2:2]={...}') or more than one dimension would slip past them.
    IF EXISTS (
        SELECT
        FROM unnest(ARRAY[
            array_lower(p_outbox_ids, 1), array_lower(p_attempt_nos, 1), array_lower(p_states, 1),
            array_lower(p_error_codes, 1), array_lower(p_error_messages, 1), array_lower(p_rail_references, 1)
        ]) AS l (lower_bound)
        WHERE l.lower_bound <> 1
    ) OR greatest(
        array_ndims(p_outbox_ids), array_ndims(p_attempt_nos), array_ndims(p_states),
        array_ndims(p_error_codes), array_ndims(p_error_messages), array_ndims(p_rail_references)
    ) > 1 THEN
        RAISE EXCEPTION 'the arrays of a batch completion must be one-dimensional and start at 1'
            USING ERRCODE = 'PO017',
                  HINT = 'Pass plain arrays (''{...}'', ARRAY[...]), not ''[2:3]={...}''.';
    END IF;

    -- Texts over their limits (PO015), as complete_outbox_attempt refuses them, before anything is locked.
    SELECT min(u.item_no)::integer INTO v_bad_no
    FROM unnest(p_error_codes, p_error_messages, p_rail_references)
        WITH ORDINALITY AS u (error_code, error_message, rail_reference, item_no)
    WHERE
        length(u.error_code) > payment_outbox._max_length('error_code')
        OR length(u.error_message) > payment_outbox._max_length('error_message')
        OR length(u.rail_reference) > payment_outbox._max_length('rail_reference');
    IF v_bad_no IS NOT NULL THEN
        PERFORM payment_outbox._limit_argument('error_code', p_error_codes[v_bad_no]);
        PERFORM payment_outbox._limit_argument('error_message', p_error_messages[v_bad_no]);
        PERFORM payment_outbox._limit_argument('rail_reference', p_rail_references[v_bad_no]);
    END IF;

    SELECT min(u.item_no)::integer INTO v_bad_no
    FROM (
        SELECT
            u.item_no,
            u.outbox_id,
            u.state,
            row_number() OVER (PARTITION BY u.outbox_id ORDER BY u.item_no) AS occurrence
        FROM unnest(p_outbox_ids, p_states) WITH ORDINALITY AS u (outbox_id, state, item_no)
    ) AS u
    WHERE u.outbox_id IS NULL OR u.occurrence > 1 OR u.state IS NULL OR u.state NOT IN ('DISPATCHED', 'FAILED', 'RETRYABLE');
    IF v_bad_no IS NOT NULL THEN
        IF p_outbox_ids[v_bad_no] IS NULL OR p_outbox_ids[v_bad_no] = ANY(p_outbox_ids[:v_bad_no - 1]) THEN
            RAISE EXCEPTION 'completion % names outbox item % %', v_bad_no, coalesce(p_outbox_ids[v_bad_no]::text, 'null'),
                CASE WHEN p_outbox_ids[v_bad_no] IS NULL THEN '' ELSE 'a second time' END
                USING ERRCODE = 'PO017',
                      HINT = 'Complete each claimed attempt once per batch.';
        END IF;
        RAISE EXCEPTION 'completion %: completion state must be DISPATCHED, FAILED or RETRYABLE, got %',
            v_bad_no, coalesce(p_states[v_bad_no]::text, 'null')
            USING ERRCODE = 'PO014';
    END IF;

    -- 1. Lock the current claims of this worker, in outbox_id order. A completion, retry or
    -- repair that got to a row first changed or removed it; this waits for it, then finds
    -- nothing there: that attempt is stale.
    SELECT array_agg(c.item_no::integer ORDER BY c.item_no) INTO v_locked_nos
    FROM (
        SELECT u.item_no
        FROM payment_outbox.payment_outbox_pending AS p
        INNER JOIN unnest(p_outbox_ids, p_attempt_nos) WITH ORDINALITY AS u (outbox_id, attempt_no, item_no)
            ON p.outbox_id = u.outbox_id
        WHERE p.attempt_no = u.attempt_no AND p.worker_id = p_worker_id
        ORDER BY p.outbox_id
        FOR UPDATE OF p
    ) AS c;

    IF coalesce(cardinality(v_locked_nos), 0) < v_count THEN
        -- Only when some attempt is stale: an outbox id the outbox never held is the caller's
        -- mistake, refused as the single call refuses it (PO003).
        SELECT min(u.item_no)::integer INTO v_bad_no
        FROM unnest(p_outbox_ids) WITH ORDINALITY AS u (outbox_id, item_no)
        WHERE
            NOT EXISTS (SELECT FROM payment_outbox.payment_outbox_pending AS p WHERE p.outbox_id = u.outbox_id)
            AND NOT EXISTS (SELECT FROM payment_outbox.payment_outbox_attempts AS a WHERE a.outbox_id = u.outbox_id);
        IF v_bad_no IS NOT NULL THEN
            RAISE EXCEPTION 'completion %: unknown outbox item %', v_bad_no, p_outbox_ids[v_bad_no]
                USING ERRCODE = 'PO003';
        END IF;
    END IF;

    -- 2. Every locked claim ends: its outcome appended to the ledger (RETRYABLE becomes QUARANTINED
    -- at the attempt limit, _state_at_limit: a machine never decides FAILED for it); terminal ones
    -- leave pending, retried ones are due after backoff, quarantined ones stay, never due.
    IF v_locked_nos IS NOT NULL THEN
        WITH completion AS (
            SELECT
                u.item_no,
                u.error_code,
                u.error_message,
                u.rail_reference,
                p.outbox_id,
                p AS item,
                p.attempt_no + 1 AS next_attempt_no,
                q.state AS next_state,
                q.reason,
                clock_timestamp() AS completed_at
            FROM unnest(
                p_outbox_ids, p_states, p_error_codes, p_error_messages, p_rail_references
            ) WITH ORDINALITY AS u (outbox_id, state, error_code, error_message, rail_reference, item_no)
            INNER JOIN payment_outbox.payment_outbox_pending AS p ON u.outbox_id = p.outbox_id
            CROSS JOIN LATERAL payment_outbox._state_at_limit(
                u.state, p.attempt_no + 1, p.attempt_base, u.error_code, NULL
            ) AS q
            WHERE u.item_no IN (SELECT l.item_no FROM unnest(v_locked_nos) AS l (item_no))
        ),

        ended AS (
            DELETE FROM payment_outbox.payment_outbox_pending AS p
            USING completion AS c
            WHERE p.outbox_id = c.outbox_id AND c.next_state NOT IN ('RETRYABLE', 'QUARANTINED')
        ),

        retried AS (
            UPDATE payment_outbox.payment_outbox_pending AS p
            SET
                attempt_no = NULL,
                worker_id = NULL,
                claimed_at = NULL,
                attempt_count = c.next_attempt_no,
                next_attempt_at = CASE
                    WHEN c.reason IS NULL THEN now() + payment_outbox._retry_delay(c.next_attempt_no)
                    ELSE 'infinity'
                END,
                quarantined_at = CASE WHEN c.reason IS NULL THEN NULL ELSE c.completed_at END,
                quarantine_reason = c.reason
            FROM completion AS c
            WHERE p.outbox_id = c.outbox_id AND c.next_state IN ('RETRYABLE', 'QUARANTINED')
        ),

        recorded AS (
            INSERT INTO payment_outbox.payment_outbox_attempts
            SELECT l.*
            FROM completion AS c
            CROSS JOIN LATERAL payment_outbox._ledger_row(
                c.item, c.next_attempt_no, c.next_state, c.completed_at, c.error_code, c.error_message,
                c.rail_reference, p_reason => c.reason
            ) AS l
        )

        SELECT
            array_agg(c.item_no::integer),
            array_agg(c.next_attempt_no),
            array_agg(c.next_state)
        INTO v_done_nos, v_done_attempt_nos, v_done_states
        FROM completion AS c;
    END IF;

    -- 3. One row per attempt, in the order given.
    RETURN QUERY
    SELECT
        u.item_no::integer,
        u.outbox_id,
        d.attempt_no,
        d.state,
        CASE WHEN d.item_no IS NULL THEN 'stale' ELSE 'completed' END
    FROM unnest(p_outbox_ids) WITH ORDINALITY AS u (outbox_id, item_no)
    LEFT JOIN unnest(v_done_nos, v_done_attempt_nos, v_done_states) AS d (item_no, attempt_no, state)
        ON u.item_no = d.item_no
    ORDER BY u.item_no;
END;
$$;

COMMENT ON FUNCTION payment_outbox.complete_outbox_attempts(
    text, uuid[], integer[], payment_outbox.outbox_attempt_state[], text[], text[], text[]
) IS
'Ends many claims of worker p_worker_id in one call: element i of the arrays is one completion, as '
'complete_outbox_attempt(p_outbox_ids[i], p_attempt_nos[i], p_states[i], ...) with the worker id. '
'Returns one row per completion in the order given (item_no from 1): completed, with the ledger '
'row''s attempt_no and state (QUARANTINED for a RETRYABLE at the maximum attempt count), or stale (not the current claim of this worker), which changes '
'nothing. At most _max_batch_items() completions (PO018); arrays of unequal length or an outbox '
'id given twice are PO017, a state other than DISPATCHED, FAILED or RETRYABLE PO014, a text over its '
'limit PO015, an unknown outbox id PO003; each fails the whole call, naming the first such completion.';

REVOKE ALL ON FUNCTION payment_outbox.complete_outbox_attempts(
    text, uuid[], integer[], payment_outbox.outbox_attempt_state[], text[], text[], text[]
) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_outbox.complete_outbox_attempts(
    text, uuid[], integer[], payment_outbox.outbox_attempt_state[], text[], text[], text[]
) TO outbox_executor;
