-- Reconciles the key register with the items that exist, and records keys held by two items.
-- tables/0006 copied the keys into the register before it held any lock: on a database upgraded
-- while payments moved, an enqueue of the previous release that committed in between left an
-- item whose key is not registered, and a retry of that key then created a second item. From
-- here on the runner locks pending before 0006 runs (tables/locks.toml); this file mends the
-- databases upgraded before that.
--
-- Every creator of a key registers it first, so holding the register against writes, before
-- anything is read, means no item can be created until this file commits. Claims, completions
-- and repair go on: they move items between pending and the ledger, and each statement below
-- reads both in one snapshot.
-- outbox migrate runs every statement under its own lock_timeout and retries the run (a SET here
-- would override it); a statement_timeout would only abort the reconciliation, which must finish
-- or roll back whole.
-- squawk-ignore require-lock-timeout, require-statement-timeout
LOCK TABLE payment_outbox.payment_outbox_idempotency_keys IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE payment_outbox.payment_outbox_key_conflicts (
    instruction_id text NOT NULL,
    idempotency_key text NOT NULL,
    outbox_id uuid NOT NULL,
    item_created_at timestamptz NOT NULL,
    item_state text NOT NULL,
    registered boolean NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_outbox_key_conflicts_pkey
    PRIMARY KEY (instruction_id, idempotency_key, outbox_id)
);

-- A key with items but no registration gets one, to its earliest item: a key must be registered
-- or the next enqueue of it creates another item. When the key has several items, the choice is
-- recorded below as a conflict, never made silently.
INSERT INTO payment_outbox.payment_outbox_idempotency_keys (
    instruction_id, idempotency_key, outbox_id, registered_at
)
SELECT DISTINCT ON (i.instruction_id, i.idempotency_key)
    i.instruction_id,
    i.idempotency_key,
    i.outbox_id,
    i.created_at
FROM (
    SELECT
        p.instruction_id,
        p.idempotency_key,
        p.outbox_id,
        p.created_at
    FROM payment_outbox.payment_outbox_pending AS p
    UNION ALL
    SELECT
        a.instruction_id,
        a.idempotency_key,
        a.outbox_id,
        a.item_created_at
    FROM payment_outbox.payment_outbox_attempts AS a
    WHERE a.state IN ('DISPATCHED', 'FAILED')
) AS i
WHERE
    NOT EXISTS (
        SELECT FROM payment_outbox.payment_outbox_idempotency_keys AS k
        WHERE k.instruction_id = i.instruction_id AND k.idempotency_key = i.idempotency_key
    )
ORDER BY i.instruction_id, i.idempotency_key, i.created_at, i.outbox_id;

-- Every item of a key held by more than one item, with the one the register names. Which of
-- them is the payment is for an operator to settle with the rail; check_invariants() goes on
-- naming the key (key_held_by_two_items) for as long as both items exist.
WITH items AS (
    SELECT DISTINCT ON (i.instruction_id, i.idempotency_key, i.outbox_id)
        i.instruction_id,
        i.idempotency_key,
        i.outbox_id,
        i.created_at,
        i.state
    FROM (
        SELECT
            a.instruction_id,
            a.idempotency_key,
            a.outbox_id,
            a.item_created_at AS created_at,
            a.state::text AS state,
            1 AS preference
        FROM payment_outbox.payment_outbox_attempts AS a
        WHERE a.state IN ('DISPATCHED', 'FAILED')
        UNION ALL
        SELECT
            p.instruction_id,
            p.idempotency_key,
            p.outbox_id,
            p.created_at,
            CASE WHEN p.attempt_no IS NULL THEN 'PENDING' ELSE 'DISPATCHING' END AS state,
            2 AS preference
        FROM payment_outbox.payment_outbox_pending AS p
    ) AS i
    ORDER BY i.instruction_id, i.idempotency_key, i.outbox_id, i.preference
),

counted AS (
    SELECT
        items.*,
        count(*) OVER (PARTITION BY items.instruction_id, items.idempotency_key) AS items_of_key
    FROM items
)

INSERT INTO payment_outbox.payment_outbox_key_conflicts (
    instruction_id, idempotency_key, outbox_id, item_created_at, item_state, registered
)
SELECT
    c.instruction_id,
    c.idempotency_key,
    c.outbox_id,
    c.created_at,
    c.state,
    coalesce(k.outbox_id = c.outbox_id, FALSE) AS registered
FROM counted AS c
LEFT JOIN payment_outbox.payment_outbox_idempotency_keys AS k
    ON c.instruction_id = k.instruction_id AND c.idempotency_key = k.idempotency_key
WHERE c.items_of_key > 1;

COMMENT ON TABLE payment_outbox.payment_outbox_key_conflicts IS
'Items that share one idempotency key, found when tables/0010 reconciled the key register: one '
'row per item of such a key. A key held by two items was enqueued twice as two payments (an '
'upgrade across tables/0006 while payments moved); an operator settles with the rail which is '
'the payment. check_invariants() names the key as long as both items exist.';
COMMENT ON COLUMN payment_outbox.payment_outbox_key_conflicts.item_created_at IS
'When the item was enqueued.';
COMMENT ON COLUMN payment_outbox.payment_outbox_key_conflicts.item_state IS
'Where the item was when the conflict was found: PENDING or DISPATCHING (in the queue), '
'DISPATCHED or FAILED (terminal in the ledger).';
COMMENT ON COLUMN payment_outbox.payment_outbox_key_conflicts.registered IS
'Whether the key register names this item: an enqueue of the key answers with that one.';
COMMENT ON COLUMN payment_outbox.payment_outbox_key_conflicts.detected_at IS
'When the reconciliation found the conflict.';
COMMENT ON INDEX payment_outbox.payment_outbox_key_conflicts_pkey IS
'One row per item of a conflicting key.';

REVOKE ALL ON payment_outbox.payment_outbox_key_conflicts FROM PUBLIC;
GRANT SELECT ON payment_outbox.payment_outbox_key_conflicts TO outbox_auditor;
