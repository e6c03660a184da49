-- The conversion's first step: stage the partitioned ledger; the old table will hold items created
-- before the first day of the month after next (UTC), at least a month away, so a long VALIDATE
-- never meets an item its CHECK refuses. A re-run returns the bound chosen first.
SELECT payment_outbox._stage_partitioned_ledger(
    (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 months') AT TIME ZONE 'UTC'
) AS legacy_until;
