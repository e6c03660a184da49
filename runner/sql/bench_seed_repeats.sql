-- Bench only, as owner: the 1,000 keys of enqueue_repeat.pgbench, enqueued with the arguments it
-- sends, so that every call it times is a repeat.
SELECT count(e.outbox_id) AS enqueued
FROM
    generate_series(1, 1000) AS n,
    LATERAL payment_outbox.enqueue_payment_outbox(
        'repeat-' || n, 'participant-' || (n % 100), 'repeat-key-' || n, 'SEPA',
        jsonb_build_object('amount', n, 'currency', 'EUR', 'creditor', 'DE89370400440532013000')
    ) AS e;
