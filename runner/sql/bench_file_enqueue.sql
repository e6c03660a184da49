-- Bench only, as outbox_ingest: a payment file through enqueue_payment_outbox_batch, counted on the server.
SELECT count(*) AS items
FROM payment_outbox.enqueue_payment_outbox_batch(%(items)s::jsonb)
