"""ZOMBIE_THRESHOLD_SECONDS and --threshold-seconds: whole non-negative seconds, read at call time."""

from __future__ import annotations

import pytest

from runner import cli
from runner.operator import threshold


@pytest.mark.parametrize("text, seconds", [("0", 0), ("1", 1), ("120", 120), (" 45 ", 45), ("007", 7),
                                           ("2147483647", 2147483647)])
def test_whole_non_negative_seconds_are_accepted(text: str, seconds: int) -> None:
    assert threshold.parse(text, source="X") == seconds


@pytest.mark.parametrize("text", ["", " ", "-1", "1.5", "1e3", "abc", "12s", "+5", "0x10", "2147483648", "١٢"])
def test_anything_else_is_a_clear_error(text: str) -> None:
    with pytest.raises(threshold.ThresholdError, match="ZOMBIE_THRESHOLD_SECONDS"):
        threshold.parse(text, source="ZOMBIE_THRESHOLD_SECONDS")


def test_default_when_unset() -> None:
    assert threshold.resolve(environ={}) == threshold.DEFAULT_SECONDS == 120


def test_environment_is_read_at_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOMBIE_THRESHOLD_SECONDS", "5")
    assert threshold.resolve() == 5
    monkeypatch.setenv("ZOMBIE_THRESHOLD_SECONDS", "9")
    assert threshold.resolve() == 9
    monkeypatch.delenv("ZOMBIE_THRESHOLD_SECONDS")
    assert threshold.resolve() == 120


def test_override_wins_over_the_environment() -> None:
    assert threshold.resolve(30, environ={"ZOMBIE_THRESHOLD_SECONDS": "5"}) == 30
    assert threshold.resolve(0, environ={"ZOMBIE_THRESHOLD_SECONDS": "nonsense"}) == 0


def test_bad_environment_value_is_an_error_not_the_default() -> None:
    with pytest.raises(threshold.ThresholdError, match="got '-3'"):
        threshold.resolve(environ={"ZOMBIE_THRESHOLD_SECONDS": "-3"})


def test_bad_command_line_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["repair", "--threshold-seconds", "-5"])
    assert exit_info.value.code == 2
    assert "--threshold-seconds must be a non-negative whole number of seconds" in capsys.readouterr().err


@pytest.mark.parametrize("interval", ["-1", "nan", "inf"])
def test_interval_must_be_finite_and_not_negative(interval: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["repair", "--loop", "--interval-seconds", interval]) == 2
    assert "--interval-seconds must be a finite number of seconds" in capsys.readouterr().err


def test_metrics_port_needs_loop(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["repair", "--metrics-port", "9188"]) == 2
    assert "--metrics-port needs --loop" in capsys.readouterr().err
