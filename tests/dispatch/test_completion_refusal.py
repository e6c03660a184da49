"""A completion the API refuses for a reason that is not the item's state (issue 25, item 4).

A rail that answers with a reference longer than the ledger's column (255 characters) once made
the whole batch's completion PO015: run_once lost every outcome of the batch, repair requeued
them and the payments were sent again. The reference worker now keeps the reference (cut to the
column with a marker, the whole value in its log) and, should the API still refuse a batch's
completion, records the others item by item and names the refused one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from runner.worker import RailOutcome, Worker
from runner.worker import reference as worker_module
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.fakerail import FakeRail
from tests.helpers.support import ProofRecord, role_connection

pytestmark = pytest.mark.proof

LONG_REFERENCE = "ref-" + "x" * 996  # 1,000 characters


def long_for(key: str) -> Any:
    def decide(item: Any) -> RailOutcome:
        reference = LONG_REFERENCE if item.idempotency_key == key else f"ok-{item.idempotency_key}"
        return RailOutcome("DISPATCHED", rail_reference=reference)
    return decide


def enqueue_three(url: str, prefix: str) -> list[str]:
    return [str(api.enqueue_once(url, f"instr-{prefix}-{n}", "bank-c", f"{prefix}-{n}")["outbox_id"]) for n in range(3)]


def terminal_states(url: str) -> dict[str, tuple[str, str | None]]:
    with role_connection(url, "outbox_auditor", name="auditor") as auditor:
        return {str(outbox_id): (state, reference) for outbox_id, state, reference in auditor.execute(
            "SELECT outbox_id, state::text, rail_reference FROM payment_outbox.payment_outbox_attempts "
            "WHERE state IN ('DISPATCHED', 'FAILED')")}


def test_a_long_reference_is_kept_and_loses_no_outcome(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    ids = enqueue_three(url, "lr")
    lines: list[dict[str, Any]] = []
    rail = FakeRail(decide=long_for("lr-1"))
    with Worker.connected(url, "w-long", say=lambda line: lines.append(json.loads(line))) as worker:
        completions = worker.run_once(rail, batch_size=10)
    proof.check("every outcome of the batch is recorded DISPATCHED", want=sorted(["DISPATCHED"] * 3),
                have=sorted(c.state for c in completions))
    stored = terminal_states(url)
    reference = stored[ids[1]][1] or ""
    proof.check("the long reference is stored cut to 255 characters, ending with the marker",
                want=(255, True, True), have=(len(reference), reference.endswith(worker_module.CUT_MARKER),
                                              LONG_REFERENCE.startswith(reference[:-len(worker_module.CUT_MARKER)])))
    cut = [line for line in lines if line["event"] == "rail_reference_cut"]
    proof.check("the worker's log holds the whole reference", want=[(ids[1], LONG_REFERENCE)],
                have=[(line["outbox_id"], line["rail_reference"]) for line in cut])
    api.repair(url, threshold_seconds=0)
    proof.check("nothing is left to repair and the rail was called once per item",
                want=({"lr-0": 1, "lr-1": 1, "lr-2": 1}, []), have=(dict(rail.calls_per_key()), api.stuck(url, 0)))
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))


def test_a_refused_completion_loses_no_other_outcome(clean_database: Database, proof: ProofRecord,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal the worker cannot foresee, made here by lifting the worker's own cut."""
    url = clean_database.url
    ids = enqueue_three(url, "rf")
    monkeypatch.setattr(worker_module, "RAIL_REFERENCE_LIMIT", 10_000)
    lines: list[dict[str, Any]] = []
    with Worker.connected(url, "w-refused", say=lambda line: lines.append(json.loads(line))) as worker:
        completions = worker.run_once(FakeRail(decide=long_for("rf-1")), batch_size=10)
        single = worker.complete(*_claim_one(url, worker, "rf-single"))
    proof.check("the batch: two recorded, the refused one named REFUSED",
                want={ids[0]: "DISPATCHED", ids[1]: "REFUSED", ids[2]: "DISPATCHED"},
                have={str(c.item.outbox_id): c.state for c in completions})
    proof.check("the others' outcomes are in the ledger", want={ids[0], ids[2]}, have=set(terminal_states(url)))
    refused = [line for line in lines if line["event"] == "completion_refused"]
    proof.check("the refusal is logged with its SQLSTATE and the whole outcome",
                want=[("PO015", LONG_REFERENCE)] * 2,
                have=[(line["sqlstate"], line["rail_reference"]) for line in refused])
    proof.check("a single completion refused the same way returns REFUSED instead of raising",
                want="REFUSED", have=single.state)


def _claim_one(url: str, worker: Worker, key: str) -> tuple[Any, RailOutcome]:
    api.enqueue_once(url, f"instr-{key}", "bank-c", key)
    [item] = worker.claim(1)
    return item, RailOutcome("DISPATCHED", rail_reference=LONG_REFERENCE)
