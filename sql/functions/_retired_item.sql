-- _retired_item: what retention left of an item whose history it retired, as a sentence, or NULL when the item's history was not retired.
CREATE OR REPLACE FUNCTION payment_outbox._retired_item(p_outbox_id uuid)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, payment_outbox, pg_temp
BEGIN ATOMIC
    -- The register has no index on outbox_id: one scan, on an error path only. A key is
    -- registered in the statement that creates its item: registered_at is its creation time.
    SELECT
        format(
            'outbox item %s (instruction %s, idempotency key %s) was created %s; retention retired its history '
            'at %s (partition %s); %s',
            k.outbox_id, k.instruction_id, k.idempotency_key, k.registered_at,
            coalesce(r.retired_at::text, 'a time still to come: its retirement is under way'), r.partition_name,
            coalesce('exported to ' || r.exported_to, 'not exported')
        )
    FROM payment_outbox.payment_outbox_idempotency_keys AS k
    INNER JOIN payment_outbox.payment_outbox_attempt_partitions AS r
        ON
            r.state IN ('detaching', 'retired')
            AND k.registered_at >= coalesce(r.range_from, '-infinity')
            AND k.registered_at < r.range_to
    WHERE k.outbox_id = p_outbox_id  -- noqa: RF02
    ORDER BY r.retired_at DESC NULLS LAST
    LIMIT 1;
END;

COMMENT ON FUNCTION payment_outbox._retired_item(uuid) IS
'For an item whose ledger partition retention retired (or is retiring): a sentence naming the item, '
'its key, when it was created, the partition, when it was retired and where it was exported; NULL '
'otherwise. item_history raises it as PO034, release and fail of the item as PO030. Owner only.';

REVOKE ALL ON FUNCTION payment_outbox._retired_item(uuid) FROM PUBLIC;
