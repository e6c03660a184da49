"""The permutation generator and the transcript of the interleaving engine (no database)."""

from __future__ import annotations

import json
from math import factorial

import pytest

from runner.harness.interleave import (
    Event,
    Invariant,
    PermutationResult,
    Runner,
    Session,
    Spec,
    Step,
    StepOutcome,
    expected,
    interleavings,
)


def multinomial(*sizes: int) -> int:
    count = factorial(sum(sizes))
    for size in sizes:
        count //= factorial(size)
    return count


def test_two_sessions_of_two_steps_in_the_isolation_testers_order() -> None:
    assert list(interleavings([["a1", "a2"], ["b1", "b2"]])) == [
        ("a1", "a2", "b1", "b2"),
        ("a1", "b1", "a2", "b2"),
        ("a1", "b1", "b2", "a2"),
        ("b1", "a1", "a2", "b2"),
        ("b1", "a1", "b2", "a2"),
        ("b1", "b2", "a1", "a2"),
    ]


@pytest.mark.parametrize("sizes", [(1,), (3,), (1, 1), (2, 2), (3, 1), (2, 2, 2), (3, 2, 1), (1, 1, 1, 1), (0, 2)])
def test_every_order_keeping_each_sessions_order_once(sizes: tuple[int, ...]) -> None:
    sessions = [[f"s{n}_{i}" for i in range(size)] for n, size in enumerate(sizes)]
    found = list(interleavings(sessions))
    assert len(found) == multinomial(*sizes), f"have {len(found)} permutations, want {multinomial(*sizes)}"
    assert len(set(found)) == len(found), "a permutation was generated twice"
    for permutation in found:
        assert sorted(permutation) == sorted(step for steps in sessions for step in steps)
        for steps in sessions:
            assert [step for step in permutation if step in steps] == steps, f"{permutation} reorders {steps}"


def test_no_sessions_give_one_empty_permutation() -> None:
    assert list(interleavings([])) == [()]


def _spec(permutations: tuple[tuple[str, ...], ...] | None = None, valid: int | None = None) -> Spec:
    valid = len(permutations) if valid is None and permutations else valid
    return Spec(name="unit", check=lambda result, probe: [], permutations=permutations, valid=valid or 0, sessions=(
        Session("s1", "outbox_ingest", (Step("s1_a", "SELECT 1"), Step("s1_b", "COMMIT")), setup=("BEGIN",)),
        Session("s2", "outbox_ingest", (Step("s2_a", "SELECT 2"),)),
    ))


def test_the_runner_generates_all_permutations_or_takes_the_listed_ones() -> None:
    assert len(Runner("unused", _spec()).permutations()) == 3
    listed = (("s2_a", "s1_a", "s1_b"),)
    assert Runner("unused", _spec(listed)).permutations() == [listed[0]]


def test_a_listed_step_the_spec_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="no step named s3_a"):
        Runner("unused", _spec((("s1_a", "s3_a"),))).permutations()


def test_the_transcript_shows_waiting_completion_errors_and_checks() -> None:
    result = PermutationResult(spec="unit", steps=("s1_a", "s2_a", "s1_b"))
    result.events = [
        Event("s1_a", "s1", "completed", StepOutcome(columns=["n"], rows=[(1,)]), order=1),
        Event("s2_a", "s2", "waiting", order=2),
        Event("s1_b", "s1", "completed", StepOutcome(), order=3),
        Event("s2_a", "s2", "completed", StepOutcome(sqlstate="PO002", message="stale"), order=4, after_wait=True),
    ]
    result.invariants = [Invariant("one item", want=1, have=1), Invariant("no gap", want=[], have=[2])]
    text = result.as_text()
    assert text.splitlines() == [
        "starting permutation: s1_a s2_a s1_b",
        "step s1_a:", "  n", "  1", "  (1 rows)",
        "step s2_a: <waiting ...>",
        "step s1_b:",
        "step s2_a: <... completed> ERROR PO002: stale",
        "check one item: ok",
        "check no gap: FAILED: have [2], want []",
    ]
    document = json.loads(json.dumps(result.as_json()))
    assert [(e["step"], e["status"]) for e in document["transcript"]] == [
        ("s1_a", "completed"), ("s2_a", "waiting"), ("s1_b", "completed"), ("s2_a", "completed")]
    assert document["transcript"][3]["result"] == {"sqlstate": "PO002", "message": "stale"}
    assert [i["pass"] for i in document["invariants"]] == [True, False]
    assert result.failures == [result.invariants[1]]
    assert result.waited("s2_a") and not result.waited("s1_a")
    assert result.completion_order() == ["s1_a", "s1_b", "s2_a"]


def test_a_spec_whose_listed_permutations_are_not_all_valid_is_refused() -> None:
    with pytest.raises(ValueError, match="valid must be 1, not 2"):
        _spec((("s2_a", "s1_a", "s1_b"),), valid=2)


def _ran(steps: str, invalid: bool = False) -> PermutationResult:
    return PermutationResult(spec="unit", steps=tuple(steps.split()), invalid="a step waits" if invalid else None)


def test_expected_holds_a_run_to_every_permutation_and_the_stated_number_of_valid_ones() -> None:
    every = [_ran("s1_a s1_b s2_a"), _ran("s1_a s2_a s1_b", invalid=True), _ran("s2_a s1_a s1_b")]
    assert [i.name for i in expected(_spec(valid=2), every) if not i.passed] == []
    assert [(i.want, i.have) for i in expected(_spec(valid=3), every) if not i.passed] == [(3, 2)]
    assert [(i.want, i.have) for i in expected(_spec(valid=1), every) if not i.passed] == [(1, 2)]
    assert [i.name for i in expected(_spec(valid=2), every[:2]) if not i.passed] == [
        "every permutation of the spec ran, once", "2 of 3 permutations are valid"]
    listed = (("s2_a", "s1_a", "s1_b"),)
    assert [i.name for i in expected(_spec(listed), [_ran("s2_a s1_a s1_b", invalid=True)]) if not i.passed] == [
        "1 of 1 permutations are valid", "every listed permutation is valid"]
