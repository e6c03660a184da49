"""Seed statements for the interleaving specs, run as the owner on empty package tables.

A claimed item cannot be made stale through the API without waiting, so the owner writes claims
directly: each a consistent item (allocator, key register, pending row with its claim, and the
DISPATCHING ledger row of that claim), which check_invariants() reports nothing about.
"""

from __future__ import annotations

ITEM_ID = "00000000-0000-4000-8000-000000000001"
PARTICIPANT = "bank-a"
INSTRUCTION = "instr-1"
KEY = "key-1"
PAYLOAD = '{"amount": "10.00", "currency": "EUR"}'


def claimed_item(claimed_ago: str, worker: str = "worker-gone") -> tuple[tuple[None, str], ...]:
    """(owner, SQL) statements that create item ITEM_ID claimed `claimed_ago` (an interval) ago."""
    return claimed_items(((ITEM_ID, KEY, claimed_ago),), worker)


def claimed_items(items: tuple[tuple[str, str, str], ...], worker: str) -> tuple[tuple[None, str], ...]:
    """(owner, SQL) statements that create one item per (outbox_id, key, claimed_ago), all of
    PARTICIPANT in that order (sequence ids 1, 2, ...), each claimed by `worker` `claimed_ago` ago."""
    pending = ", ".join(
        f"('{outbox_id}', '{INSTRUCTION}', '{PARTICIPANT}', {number}, '{key}', 'sepa', '{PAYLOAD}'::jsonb, "
        f"sha256(convert_to('{PAYLOAD}'::jsonb::text, 'UTF8')), 1, 1, '{worker}', now() - interval '{claimed_ago}')"
        for number, (outbox_id, key, claimed_ago) in enumerate(items, start=1))
    keys = ", ".join(f"('{INSTRUCTION}', '{key}', '{outbox_id}')" for outbox_id, key, _ in items)
    return (
        (None, f"INSERT INTO payment_outbox.participant_outbox_sequences (participant_id, next_sequence_id) "
               f"VALUES ('{PARTICIPANT}', {len(items) + 1})"),
        (None, "INSERT INTO payment_outbox.payment_outbox_idempotency_keys "
               f"(instruction_id, idempotency_key, outbox_id) VALUES {keys}"),
        (None, f"""INSERT INTO payment_outbox.payment_outbox_pending (
                       outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
                       payload, payload_sha256, attempt_count, attempt_no, worker_id, claimed_at)
                   VALUES {pending}"""),
        (None, """INSERT INTO payment_outbox.payment_outbox_attempts (
                      outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
                      payload_sha256, item_created_at, attempt_no, state, claimed_at, worker_id)
                  SELECT outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
                         payload_sha256, created_at, attempt_no, 'DISPATCHING', claimed_at, worker_id
                  FROM payment_outbox.payment_outbox_pending"""),
    )


def enqueued(key: str, participant: str = PARTICIPANT) -> tuple[str, str]:
    """(outbox_ingest, SQL): an item enqueued through the API."""
    return ("outbox_ingest", enqueue_sql(key, participant))


def enqueue_sql(key: str, participant: str = PARTICIPANT, instruction: str = INSTRUCTION) -> str:
    return (f"SELECT outbox_id, sequence_id, state FROM payment_outbox.enqueue_payment_outbox("
            f"'{instruction}', '{participant}', '{key}', 'sepa', '{PAYLOAD}')")
