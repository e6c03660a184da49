-- The oldest vacuum horizon of each kind (session, prepared_transaction, replication_slot).
SELECT
    h.horizon_source,
    h.holder,
    h.complete,
    h.xmin_age,
    h.age_seconds
FROM payment_outbox.vacuum_horizon() AS h;
