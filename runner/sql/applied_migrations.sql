-- Every file the ledger records, with its checksum.
SELECT
    file_name,
    kind,
    sha256
FROM payment_outbox.schema_migrations
ORDER BY file_name;
