-- The ledger's monthly partitions up to %(ahead)s ahead; the names of those created.
SELECT e.partition_name
FROM payment_outbox.ensure_attempt_partitions(%(ahead)s::interval) AS e;
