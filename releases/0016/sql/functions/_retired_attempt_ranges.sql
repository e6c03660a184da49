-- _retired_attempt_ranges: the ranges of item creation time whose ledger rows retention has taken away.
CREATE OR REPLACE FUNCTION payment_outbox._retired_attempt_ranges()
RETURNS TABLE (partition_name text, range_from timestamptz, range_to timestamptz, retired_at timestamptz)
LANGUAGE sql
STABLE
-- Neither SECURITY DEFINER nor a SET clause, so its callers (SECURITY DEFINER functions with a
-- pinned path) inline it; every name is schema-qualified.
AS $$
    -- A partition retention began on is gone for queries on the ledger from the moment its
    -- DETACH ... CONCURRENTLY committed its first transaction (inhdetachpending): from then on
    -- its items are counted from payment_outbox_retired_sequences instead.
    SELECT
        r.partition_name,
        coalesce(r.range_from, '-infinity'::timestamptz) AS range_from,
        r.range_to,
        r.retired_at
    FROM payment_outbox.payment_outbox_attempt_partitions AS r
    WHERE
        r.state IN ('detaching', 'retired')
        AND NOT EXISTS (
            SELECT FROM pg_catalog.pg_inherits AS h
            INNER JOIN pg_catalog.pg_class AS c ON h.inhrelid = c.oid
            WHERE
                c.relnamespace = 'payment_outbox'::regnamespace
                AND c.relname = r.partition_name
                AND NOT h.inhdetachpending
        )
$$;

COMMENT ON FUNCTION payment_outbox._retired_attempt_ranges() IS
'The partitions retention retired, or is retiring and has already detached from the ledger: the '
'item_created_at ranges ([range_from, range_to), -infinity for no lower bound) whose items are known '
'only from the key register and payment_outbox_retired_sequences.';

REVOKE ALL ON FUNCTION payment_outbox._retired_attempt_ranges() FROM PUBLIC;
