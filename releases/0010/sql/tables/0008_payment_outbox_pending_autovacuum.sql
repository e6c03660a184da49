-- Vacuums the hot queue by the number of dead rows, not by a fraction of its size.
-- Every claim and completion leaves a dead row behind, and the claim path walks the due index
-- from its oldest entry, through the entries of rows already claimed or completed, until vacuum
-- removes them: a queue that moves thousands of items a minute must not wait for 20% of the
-- table (the server default) to be dead first.
ALTER TABLE payment_outbox.payment_outbox_pending SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);
