"""The history checker names each planted anomaly, and only it."""

from __future__ import annotations

import psycopg
import pytest

from runner.harness.history import History, TerminalAttempt, check


class ConnectionLost(psycopg.OperationalError):
    """A lost connection: no SQLSTATE, so the outcome is unknown."""


def enqueue(history: History, key: str, outbox_id: str | None, *, unknown: bool = False) -> None:
    value = {"instruction_id": f"i-{key}", "idempotency_key": key}
    if unknown:
        with pytest.raises(ConnectionLost), history.operation("client", "enqueue", value):
            raise ConnectionLost("server closed the connection unexpectedly")
        return
    with history.operation("client", "enqueue", value) as outcome:
        outcome.value = {"outbox_id": outbox_id}


def terminal(key: str, outbox_id: str, attempt_no: int = 2) -> TerminalAttempt:
    return TerminalAttempt(outbox_id, f"i-{key}", key, attempt_no, "DISPATCHED")


def test_a_clean_history_is_valid() -> None:
    history = History(name="clean")
    enqueue(history, "k1", "o1")
    enqueue(history, "k2", None, unknown=True)
    enqueue(history, "k2", "o2")  # the retry of the unknown outcome
    verdict = check(history, [terminal("k1", "o1"), terminal("k2", "o2")])
    assert verdict.valid, verdict.counts
    assert {k: verdict.counts[k] for k in ("attempted", "acknowledged", "unknown", "recovered", "resolved_by_retry",
                                           "terminal")} == {"attempted": 2, "acknowledged": 2, "unknown": 1,
                                                            "recovered": 1, "resolved_by_retry": 1, "terminal": 2}


def test_each_planted_anomaly_is_counted() -> None:
    history = History(name="planted")
    enqueue(history, "lost", "o-lost")
    enqueue(history, "twice", "o-twice")
    enqueue(history, "recreated", "o-a")
    enqueue(history, "recreated", "o-b")
    enqueue(history, "unsettled", None, unknown=True)
    with history.operation("worker", "complete", {"outbox_id": "o-twice", "attempt_no": 1}) as outcome:
        outcome.value = {"outbox_id": "o-gone", "attempt_no": 2, "state": "DISPATCHED"}
    with pytest.raises(psycopg.errors.RaiseException), history.operation("worker", "complete", {}):
        raise psycopg.errors.RaiseException("stale")  # a SQLSTATE: a definite failure
    verdict = check(history, [terminal("twice", "o-twice"), terminal("twice", "o-twice2"),
                              terminal("recreated", "o-a"), terminal("recreated", "o-b"), terminal("stranger", "o-x")])
    anomalies = ("lost", "unexpected", "duplicated", "unresolved", "identity_changed", "lost_completions")
    assert {k: verdict.counts[k] for k in anomalies} == {
        "lost": 1, "unexpected": 1, "duplicated": 2, "unresolved": 1, "identity_changed": 1, "lost_completions": 1}
    assert verdict.details["lost"] == [[["i-lost", "lost"], ["o-lost"]]]
    assert verdict.details["unexpected"] == [["i-stranger", "stranger"]]
    assert verdict.details["lost_completions"] == [["o-gone", 2]]
    assert verdict.counts["complete_fail"] == 1 and verdict.counts["enqueue_unknown"] == 1
    assert not verdict.valid
