"""The Phase 4 proof: one stale DISPATCHING claim is requeued exactly once by one `outbox repair` cycle.

The seven steps of issue 3, in order. The repair runs as a subprocess of the real `outbox repair`
entry point with ZOMBIE_THRESHOLD_SECONDS=1 in its environment and DATABASE_URL pointing at the test
database. The owner connection is used only to TRUNCATE and to seed; every observation goes through
a runtime role. PHASE4_REPEAT (default 1; `make test` and `make prove` pass 10) repeats the proof.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest

from tests.conftest import Database, truncate_package_tables
from tests.helpers import api, zombies
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof

REPEAT = int(os.environ.get("PHASE4_REPEAT", "1"))
THRESHOLD = 1
ITEM_FIELDS = {"event", "outbox_id", "attempt_no", "previous_state", "new_state", "threshold_seconds",
               "stale_seconds", "worker_id", "timestamp"}


@pytest.mark.parametrize("run", range(1, REPEAT + 1), ids=lambda run: f"run{run}of{REPEAT}")
def test_phase4_one_stale_claim_is_requeued_exactly_once(database: Database, proof: ProofRecord, run: int) -> None:
    url = database.url
    run_id = f"p4-{run}-{uuid.uuid4().hex[:12]}"
    proof.observe(run=run, of=REPEAT, run_id=run_id, threshold_env=str(THRESHOLD))

    # 2. As the owner: an empty outbox (the three tables the issue names, and the key register).
    proof.observe(truncated=truncate_package_tables(url))

    # 3. As the owner: one new item whose latest attempt is a DISPATCHING claim made 10 s ago.
    item = zombies.seed_stale_claim(url, run_id, claimed_seconds_ago=10)
    before = zombies.ledger(url, item.outbox_id)
    proof.check("seeded ledger: one DISPATCHING attempt", want=[(1, "DISPATCHING", item.worker_id)], have=before)

    # 4. Before repair: exactly one qualifying zombie, and it is the seeded claim.
    proof.check("exactly one zombie qualifies before repair", want=[(item.outbox_id, 1, item.worker_id)],
                have=api.stuck(url, THRESHOLD))

    # 5. One repair cycle through the real entry point.
    started = datetime.now(UTC)
    first = zombies.run_repair(url, threshold=str(THRESHOLD))
    finished = datetime.now(UTC)
    proof.observe(first_stdout=first.lines, first_stderr=first.stderr)
    proof.check("outbox repair exits 0", want=0, have=first.returncode)

    # 6. Exactly one new ZOMBIE_REQUEUE attempt, numbered last + 1, and the item due again, unclaimed.
    after = zombies.ledger(url, item.outbox_id)
    new_attempt_no = before[-1][0] + 1
    proof.check("ledger: the seeded attempt, then one ZOMBIE_REQUEUE numbered last + 1",
                want=before + [(new_attempt_no, "ZOMBIE_REQUEUE", item.worker_id)], have=after)
    proof.check("pending holds the item once, due, no claim in flight",
                want={"queue_depth": 1, "due_now": 1, "in_flight": 0}, have=zombies.queue(url))
    handed = zombies.probe_claim(url)
    proof.check("a claim (rolled back) is handed exactly this item, so it is due and unclaimed",
                want=[item.outbox_id], have=[h["outbox_id"] for h in handed])
    proof.check("attempt_count = GREATEST(previous attempt_count, new attempt_no)",
                want=max(item.attempt_no, new_attempt_no), have=handed[0]["attempt_count_before"])
    logged = first.items(item.outbox_id)
    proof.check("one JSON log line for the item", want=1, have=len(logged))
    line = logged[0]
    proof.check("the log line carries every field", want=set(), have=ITEM_FIELDS - set(line))
    proof.check("the log line's values", want={
        "event": "zombie_requeued", "outbox_id": item.outbox_id, "attempt_no": new_attempt_no,
        "previous_state": "DISPATCHING",
        "new_state": "ZOMBIE_REQUEUE", "threshold_seconds": THRESHOLD, "worker_id": item.worker_id,
    }, have={key: line.get(key) for key in ("event", "outbox_id", "attempt_no", "previous_state", "new_state",
                                             "threshold_seconds", "worker_id")})
    proof.check("stale_seconds is the claim's age: at least 10 s, well under a minute",
                want=True, have=10 <= line["stale_seconds"] < 60)
    stamp = datetime.fromisoformat(line["timestamp"])
    proof.check("timestamp is ISO 8601 UTC, within the repair's run", want=(0.0, True),
                have=(stamp.utcoffset().total_seconds(), started <= stamp <= finished))
    summary = first.events("repair_cycle")
    proof.check("one summary line: one requeued, none stuck after the cycle",
                want=[(1, 0, 0, THRESHOLD)],
                have=[(s["zombies_requeued"], s["zombies_failed"], s["stuck_dispatching"], s["threshold_seconds"])
                      for s in summary])
    proof.check("the summary has the cycle's duration", want=True, have=summary[0]["duration_seconds"] >= 0)

    # 7. A second cycle: nothing new in the ledger, no line for the item.
    second = zombies.run_repair(url, threshold=str(THRESHOLD))
    proof.observe(second_stdout=second.lines, second_stderr=second.stderr)
    proof.check("the second outbox repair exits 0", want=0, have=second.returncode)
    proof.check("second cycle: no new attempt", want=after, have=zombies.ledger(url, item.outbox_id))
    proof.check("second cycle: no log line for the item", want=[], have=second.items(item.outbox_id))
    proof.check("second cycle's summary: nothing requeued", want=[0],
                have=[s["zombies_requeued"] for s in second.events("repair_cycle")])
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))

    # The repair's own output, as it printed it, for the evidence bundle.
    log_dir = proof.report_directory("phase4")
    (log_dir / f"run{run:03d}-{run_id}.jsonl").write_text(first.stdout + second.stdout)
