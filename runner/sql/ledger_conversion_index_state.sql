-- An index the conversion builds: NULL when absent, else whether it is valid (an interrupted
-- CREATE INDEX CONCURRENTLY leaves it invalid).
SELECT (
    SELECT x.indisvalid
    FROM pg_catalog.pg_index AS x
    WHERE x.indexrelid = to_regclass('payment_outbox.' || quote_ident(%(index_name)s))
) AS index_valid;
