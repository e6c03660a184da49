-- Paused rails, with who paused them, why, since when, and how many of their items wait.
CREATE OR REPLACE VIEW payment_outbox.payment_outbox_paused_rails AS
SELECT
    r.rail_type,
    r.reason,
    r.actor,
    r.changed_by,
    r.changed_at AS paused_since,
    (
        SELECT count(*) FROM payment_outbox.payment_outbox_pending AS p
        WHERE p.rail_type = r.rail_type AND p.attempt_no IS NULL
    ) AS waiting_items,
    (
        SELECT count(*) FROM payment_outbox.payment_outbox_pending AS p
        WHERE p.rail_type = r.rail_type AND p.attempt_no IS NULL AND p.next_attempt_at <= now()
    ) AS due_items
FROM payment_outbox.payment_outbox_rails AS r
WHERE r.paused;

COMMENT ON VIEW payment_outbox.payment_outbox_paused_rails IS
'Rails paused now (pause_rail): reason, actor, login, since when, their items not in flight and '
'of those the items due now. No payloads: readable by outbox_readonly, outbox_repair, outbox_operator.';

REVOKE ALL ON payment_outbox.payment_outbox_paused_rails FROM PUBLIC;
GRANT SELECT ON payment_outbox.payment_outbox_paused_rails TO outbox_readonly, outbox_repair, outbox_operator;
