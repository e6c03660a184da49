"""Every permutation of every interleaving spec, on the embedded cluster; transcripts go to
reports/interleavings/<spec>/."""

from __future__ import annotations

import pytest

from runner.harness import interleave
from tests.conftest import Database
from tests.helpers.support import ProofRecord
from tests.interleavings import dispatch_specs, enqueue_specs, file_specs, quarantine_specs, rail_specs

pytestmark = pytest.mark.proof

SPECS = (enqueue_specs.SPECS + file_specs.SPECS + dispatch_specs.SPECS + quarantine_specs.SPECS
         + rail_specs.SPECS)


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_interleaving_spec(clean_database: Database, spec: interleave.Spec, proof: ProofRecord) -> None:
    results = interleave.Runner(clean_database.url, spec).run()
    directory = interleave.write_transcripts(proof.report_directory("interleavings"), spec, results)
    valid = [r for r in results if r.invalid is None]
    proof.observe(transcripts=str(directory), permutations=len(results), valid=len(valid),
                  invalid=[" ".join(r.steps) for r in results if r.invalid is not None],
                  waited=sorted({e.step for r in results for e in r.events if e.status == "waiting"}),
                  seconds=round(sum(r.seconds for r in results), 2))
    for invariant in interleave.expected(spec, results):
        proof.check(invariant.name, want=invariant.want, have=invariant.have)
    failures = {" ".join(r.steps): [(i.name, f"have {i.have!r}", f"want {i.want!r}") for i in r.failures]
                for r in valid if r.failures}
    proof.check(f"every valid permutation holds its invariants (transcripts in {directory})", want={}, have=failures)
