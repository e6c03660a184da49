-- _ledger_coverage: the item creation times the ledger has a partition for, or NULL while the ledger is not partitioned.
CREATE OR REPLACE FUNCTION payment_outbox._ledger_coverage()
RETURNS tstzmultirange
LANGUAGE sql
STABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
BEGIN ATOMIC
    -- No partition attached, converting or detaching: the ledger is the plain table it was before
    -- tables/0016's conversion, which holds any time (NULL). The legacy table while it converts
    -- holds what its CHECK allows (below its bound); a partition being detached holds nothing new.
    SELECT
        CASE
            WHEN bool_or(r.state IN ('attached', 'converting', 'detaching')) IS NOT TRUE THEN NULL
            ELSE coalesce(
                range_agg(tstzrange(r.range_from, r.range_to)) FILTER (WHERE r.state IN ('attached', 'converting')),
                '{}'::tstzmultirange
            )
        END
    FROM payment_outbox.payment_outbox_attempt_partitions AS r;
END;

COMMENT ON FUNCTION payment_outbox._ledger_coverage() IS
'The item creation times (item_created_at) the ledger can take a row for: the ranges of its attached '
'partitions (and of the old table while the conversion runs, below its CHECK''s bound); NULL while the '
'ledger is not partitioned (any time). Enqueue creates no item outside it (PO035), claims skip an item '
'outside it, ensure_attempt_partitions() recreates a pending item''s missing month.';

REVOKE ALL ON FUNCTION payment_outbox._ledger_coverage() FROM PUBLIC;
