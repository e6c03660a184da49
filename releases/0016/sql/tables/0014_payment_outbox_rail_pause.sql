-- Pausing a rail: the paused-rails table, its append-only history, and a paused flag on pending rows.
-- A paused rail's items stay in pending, flagged, and leave the claim path's partial index, so a
-- claim never reads them however many there are. The flag is only an index hint: claims also
-- test the (tiny) rails table, so an item flagged late (its enqueue read the rail before a pause
-- committed) is still not claimed, and one left flagged by a resume it raced is unflagged by the
-- next claim (functions/claim_outbox_batch.sql).
--
-- pending in ACCESS EXCLUSIVE first, the mode ADD COLUMN takes anyway: the run never upgrades a
-- weaker lock. The column has a constant default, so adding it rewrites nothing; the new claim
-- index is built while the lock is held, over the items not yet terminal only (the hot queue).
-- outbox migrate runs every statement under its own lock_timeout and retries the run (a SET here
-- would override it); a statement_timeout would only abort the index build, which must finish or
-- roll back whole.
-- squawk-ignore require-lock-timeout, require-statement-timeout
LOCK TABLE payment_outbox.payment_outbox_pending IN ACCESS EXCLUSIVE MODE;

ALTER TABLE payment_outbox.payment_outbox_pending
ADD COLUMN paused boolean NOT NULL DEFAULT FALSE;

COMMENT ON COLUMN payment_outbox.payment_outbox_pending.paused IS
'True while the item''s rail is paused and the item is not in flight: the item is then outside '
'the claim index. Set by pause_rail() and by the trigger payment_outbox_pending_paused_rail on '
'every row that becomes claimable (enqueue, RETRYABLE, repair); cleared by resume_rail().';

CREATE TABLE payment_outbox.payment_outbox_rails (
    rail_type text NOT NULL,
    paused boolean NOT NULL,
    reason text,
    actor text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text NOT NULL DEFAULT session_user,
    CONSTRAINT payment_outbox_rails_pkey PRIMARY KEY (rail_type)
);

CREATE TABLE payment_outbox.payment_outbox_rail_history (
    history_id bigint GENERATED ALWAYS AS IDENTITY,
    rail_type text NOT NULL,
    request text NOT NULL,
    was_paused boolean NOT NULL,
    reason text,
    actor text NOT NULL,
    items_changed bigint NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text NOT NULL DEFAULT session_user,
    CONSTRAINT payment_outbox_rail_history_pkey PRIMARY KEY (history_id),
    CONSTRAINT payment_outbox_rail_history_request_known_check CHECK (request IN ('PAUSE', 'RESUME')),
    CONSTRAINT payment_outbox_rail_history_items_changed_non_negative_check CHECK (items_changed >= 0)
);

-- A rail's row is changed in place by pause_rail() and resume_rail(), never removed; its history
-- is append-only (the one trigger function of the append-only tables, tables/0009).
CREATE TRIGGER payment_outbox_rails_kept
BEFORE DELETE ON payment_outbox.payment_outbox_rails
FOR EACH STATEMENT EXECUTE FUNCTION payment_outbox._reject_update_or_delete(
    'Pause and resume a rail with payment_outbox.pause_rail() and resume_rail(); a rail''s row is never removed.'
);

CREATE TRIGGER payment_outbox_rail_history_append_only
BEFORE UPDATE OR DELETE ON payment_outbox.payment_outbox_rail_history
FOR EACH STATEMENT EXECUTE FUNCTION payment_outbox._reject_update_or_delete(
    'Pause and resume a rail with payment_outbox.pause_rail() and resume_rail(); their history is kept for good.'
);

-- Sets the flag of a row that becomes claimable from the rails table: an enqueue, a RETRYABLE
-- completion, a repair requeue, a release. A plain read, no row lock on the rail (many enqueues
-- of one rail locking its row would share it through a multixact); a row that read the rail just
-- before a pause or resume committed is corrected by the claim (see the header).
CREATE FUNCTION payment_outbox._flag_paused_rail_item()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, payment_outbox, pg_temp
AS $$
BEGIN
    NEW.paused := EXISTS (
        SELECT
        FROM payment_outbox.payment_outbox_rails AS r
        WHERE r.rail_type = NEW.rail_type AND r.paused
    );
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION payment_outbox._flag_paused_rail_item() IS
'Trigger function: sets pending.paused on a row that becomes claimable (inserted, or its claim '
'cleared) to whether its rail is paused now.';

REVOKE ALL ON FUNCTION payment_outbox._flag_paused_rail_item() FROM PUBLIC;

-- A claim sets attempt_no (not NULL): the WHEN clause keeps the trigger off the claim path.
CREATE TRIGGER payment_outbox_pending_paused_rail
BEFORE INSERT OR UPDATE OF attempt_no ON payment_outbox.payment_outbox_pending
FOR EACH ROW WHEN (new.attempt_no IS NULL)
EXECUTE FUNCTION payment_outbox._flag_paused_rail_item();

-- The claim path: due, unclaimed, not paused. Replaces payment_outbox_pending_next_attempt_at_due_idx,
-- which held the paused rows too.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX payment_outbox_pending_next_attempt_at_claimable_idx
ON payment_outbox.payment_outbox_pending (next_attempt_at)
WHERE attempt_no IS NULL AND NOT paused;

-- The table is held in ACCESS EXCLUSIVE already (above): dropping the index waits for nothing more.
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX payment_outbox.payment_outbox_pending_next_attempt_at_due_idx;

-- Paused rows by rail: resume finds them here, a claim looks up only the rails not paused (a
-- resume's stragglers, normally none), and the metrics count a paused rail's items.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX payment_outbox_pending_rail_type_paused_idx
ON payment_outbox.payment_outbox_pending (rail_type)
WHERE paused;

COMMENT ON INDEX payment_outbox.payment_outbox_pending_next_attempt_at_claimable_idx IS
'Due, unclaimed items of rails not paused, in due order: the claim path.';
COMMENT ON INDEX payment_outbox.payment_outbox_pending_rail_type_paused_idx IS
'Paused items by rail: resume, the claim''s check for items a resume left flagged, the paused-rail gauges.';
COMMENT ON TRIGGER payment_outbox_pending_paused_rail ON payment_outbox.payment_outbox_pending IS
'Flags a row that becomes claimable when its rail is paused.';

COMMENT ON TABLE payment_outbox.payment_outbox_rails IS
'Rails an operator has paused (paused) or paused and resumed (not paused), one row each; a rail '
'never paused has no row. Changed only through pause_rail() and resume_rail().';
COMMENT ON COLUMN payment_outbox.payment_outbox_rails.rail_type IS
'The rail, as items carry it in rail_type.';
COMMENT ON COLUMN payment_outbox.payment_outbox_rails.paused IS
'True while the rail is paused: claims take none of its items.';
COMMENT ON COLUMN payment_outbox.payment_outbox_rails.reason IS
'Why the rail was paused (the latest pause); NULL after a resume.';
COMMENT ON COLUMN payment_outbox.payment_outbox_rails.actor IS
'The person or system the operator named for the latest change.';
COMMENT ON COLUMN payment_outbox.payment_outbox_rails.changed_at IS
'When the latest change was made (its transaction''s start).';
COMMENT ON COLUMN payment_outbox.payment_outbox_rails.changed_by IS
'The login (session_user) that made the latest change.';
COMMENT ON INDEX payment_outbox.payment_outbox_rails_pkey IS
'One row per rail; pause and resume lock it, so changes of one rail are serialised.';
COMMENT ON TABLE payment_outbox.payment_outbox_rail_history IS
'Every pause_rail() and resume_rail() call, append-only: who (actor and login), when, why, what it found.';
COMMENT ON COLUMN payment_outbox.payment_outbox_rail_history.history_id IS
'Position of the call in the history.';
COMMENT ON COLUMN payment_outbox.payment_outbox_rail_history.rail_type IS
'The rail paused or resumed.';
COMMENT ON COLUMN payment_outbox.payment_outbox_rail_history.request IS
'PAUSE or RESUME.';
COMMENT ON COLUMN payment_outbox.payment_outbox_rail_history.was_paused IS
'Whether the rail was paused before the call: a PAUSE of a paused rail or a RESUME of a running '
'one changes no state (both are accepted and recorded).';
COMMENT ON COLUMN payment_outbox.payment_outbox_rail_history.reason IS
'The reason given (PAUSE); NULL for RESUME.';
COMMENT ON COLUMN payment_outbox.payment_outbox_rail_history.actor IS
'The person or system the operator named.';
COMMENT ON COLUMN payment_outbox.payment_outbox_rail_history.items_changed IS
'Items not in flight whose paused flag the call set (PAUSE) or cleared (RESUME).';
COMMENT ON COLUMN payment_outbox.payment_outbox_rail_history.changed_at IS
'When the call was made (its transaction''s start).';
COMMENT ON COLUMN payment_outbox.payment_outbox_rail_history.changed_by IS
'The login (session_user) that made the call, whatever role it acted as.';
COMMENT ON INDEX payment_outbox.payment_outbox_rail_history_pkey IS
'History rows in the order they were written.';
COMMENT ON TRIGGER payment_outbox_rails_kept ON payment_outbox.payment_outbox_rails IS
'Refuses DELETE of a rail''s row for everyone.';
COMMENT ON TRIGGER payment_outbox_rail_history_append_only ON payment_outbox.payment_outbox_rail_history IS
'Refuses UPDATE and DELETE on the rail history for everyone.';

REVOKE ALL ON payment_outbox.payment_outbox_rails FROM PUBLIC;
REVOKE ALL ON payment_outbox.payment_outbox_rail_history FROM PUBLIC;
GRANT SELECT ON payment_outbox.payment_outbox_rails TO outbox_operator, outbox_auditor;
GRANT SELECT ON payment_outbox.payment_outbox_rail_history TO outbox_operator, outbox_auditor;
