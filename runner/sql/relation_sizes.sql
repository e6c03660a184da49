-- Bytes, live and dead rows of each leaf table (partition) of the ledger, the key register and the queue.
SELECT
    r.table_name,
    r.partition_name,
    r.total_bytes,
    r.live_rows,
    r.dead_rows
FROM payment_outbox.payment_outbox_relation_sizes AS r
ORDER BY r.table_name, r.partition_name;
