"""paused_since is when the rail was first paused (issue 25, item 11).

A second pause of a rail already paused (a new reason, another operator) showed its own time as
paused_since, hiding how long the rail had been stopped. The reason and actor are the latest;
paused_since is the first pause of the stretch, until a resume.
"""

from __future__ import annotations

import pytest

from runner.operator import rail
from tests.conftest import Database
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof


def test_a_repeated_pause_keeps_the_first_paused_since(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    rail.pause(url, "sepa", "outage at the bank", "alice")
    [first] = rail.paused(url)
    rail.pause(url, "sepa", "still down, bank says noon", "bob")
    [second] = rail.paused(url)
    proof.check("after a second pause: the first paused_since, the latest reason and actor",
                want=(first.paused_since, "still down, bank says noon", "bob"),
                have=(second.paused_since, second.reason, second.actor))
    rail.resume(url, "sepa", "alice")
    rail.pause(url, "sepa", "again", "carol")
    [third] = rail.paused(url)
    proof.check("a pause after a resume starts a new stretch", want=True, have=third.paused_since > first.paused_since)
