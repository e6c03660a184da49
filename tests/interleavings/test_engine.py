"""The engine itself, on a spec that knows nothing of payments: two sessions take one advisory
lock. It must report exactly the waits PostgreSQL has, collect the waiter when the holder ends,
and call a permutation invalid when it sends a step to a waiting session."""

from __future__ import annotations

import dataclasses
import json

import pytest

from runner.harness import interleave
from tests.conftest import Database
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof


def _session(name: str) -> interleave.Session:
    return interleave.Session(name=name, role="outbox_readonly", setup=("BEGIN",), steps=(
        interleave.Step(f"{name}_lock", "SELECT pg_catalog.pg_advisory_xact_lock(7340301) AS locked"),
        interleave.Step(f"{name}_commit", "COMMIT"),
    ))


# Of the six orders, the two that send a step to the waiting session are invalid.
SPEC = interleave.Spec(name="engine_advisory_lock", sessions=(_session("s1"), _session("s2")),
                       check=lambda result, probe: [], valid=4)


def test_waits_completions_and_invalid_permutations(clean_database: Database, proof: ProofRecord,
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    results = interleave.Runner(clean_database.url, SPEC).run()
    directory = interleave.write_transcripts(tmp_path_factory.mktemp("transcripts"), SPEC, results)
    events = {" ".join(r.steps): [(e.step, e.status) for e in r.events] for r in results}
    proof.observe(events=events)
    proof.check("the lock is waited for, and the waiter completes after the holder commits", want=[
        ("s1_lock", "completed"), ("s2_lock", "waiting"), ("s1_commit", "completed"), ("s2_lock", "completed"),
        ("s2_commit", "completed")], have=events["s1_lock s2_lock s1_commit s2_commit"])
    proof.check("no wait when the holder committed first", want=[
        ("s1_lock", "completed"), ("s1_commit", "completed"), ("s2_lock", "completed"), ("s2_commit", "completed")],
        have=events["s1_lock s1_commit s2_lock s2_commit"])
    proof.check("a step sent to a waiting session makes the permutation invalid",
                want=["s1_lock s2_lock s2_commit s1_commit", "s2_lock s1_lock s1_commit s2_commit"],
                have=sorted(" ".join(r.steps) for r in results if r.invalid is not None))
    proof.check("check_invariants() is checked on every valid permutation", want=[["check_invariants() is empty"]] * 4,
                have=[[i.name for i in r.invariants] for r in results if r.invalid is None])
    proof.check("the engine's own expectations hold: six permutations ran, four valid", want=[],
                have=[i.name for i in interleave.expected(SPEC, results) if not i.passed])
    fewer = interleave.expected(dataclasses.replace(SPEC, valid=5), results)
    proof.check("a spec expecting another number of valid permutations fails", want=[(5, 4)],
                have=[(i.want, i.have) for i in fewer if not i.passed])
    summary = json.loads((directory / "summary.json").read_text())
    proof.check("a JSON and a text transcript per permutation", want=(6, 6, 4, 2),
                have=(len(list(directory.glob("0*.json"))), len(list(directory.glob("0*.txt"))), summary["valid"],
                      summary["invalid"]))
