"""The lock policy of `outbox migrate`: arguments, else environment, else defaults; refused when unusable."""

from __future__ import annotations

import pytest

from runner.schema import lockwait


def test_defaults_when_nothing_is_set() -> None:
    policy = lockwait.resolve(environ={})
    assert (policy.timeout_seconds, policy.retries, policy.lock_timeout_setting) == (3.0, 5, "3000ms")


def test_environment_then_arguments() -> None:
    env = {lockwait.TIMEOUT_VARIABLE: "0.5", lockwait.RETRIES_VARIABLE: "2"}
    assert lockwait.resolve(environ=env) == lockwait.LockPolicy(timeout_seconds=0.5, retries=2)
    assert lockwait.resolve(10, 0, environ=env) == lockwait.LockPolicy(timeout_seconds=10, retries=0)


@pytest.mark.parametrize("env", [{lockwait.TIMEOUT_VARIABLE: "soon"}, {lockwait.TIMEOUT_VARIABLE: "0"},
                                 {lockwait.TIMEOUT_VARIABLE: "nan"}, {lockwait.TIMEOUT_VARIABLE: "-1"},
                                 {lockwait.TIMEOUT_VARIABLE: "601"}, {lockwait.RETRIES_VARIABLE: "1.5"},
                                 {lockwait.RETRIES_VARIABLE: "-1"}])
def test_unusable_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(lockwait.PolicyError):
        lockwait.resolve(environ=env)


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = lockwait.LockPolicy()
    assert [policy.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
