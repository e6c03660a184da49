-- Whether the ledger is the partitioned table (the conversion has run); false before the ledger exists.
SELECT coalesce((
    SELECT c.relkind = 'p'
    FROM pg_catalog.pg_class AS c
    WHERE c.oid = to_regclass('payment_outbox.payment_outbox_attempts')
), FALSE) AS partitioned;
