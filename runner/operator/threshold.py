"""The zombie threshold: how old a DISPATCHING claim must be before repair requeues it."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

ENVIRONMENT_VARIABLE = "ZOMBIE_THRESHOLD_SECONDS"
DEFAULT_SECONDS = 120
# The SQL parameter is an integer: refuse what would overflow it rather than fail in the server.
MAX_SECONDS = 2_147_483_647
_DIGITS = re.compile(r"[0-9]+")


class ThresholdError(ValueError):
    """The threshold given is not a non-negative whole number of seconds."""


def parse(text: str, *, source: str) -> int:
    """A whole, non-negative number of seconds; `source` names where the text came from."""
    stripped = text.strip()
    if not _DIGITS.fullmatch(stripped):
        raise ThresholdError(
            f"{source} must be a non-negative whole number of seconds (e.g. 120), got {text!r}")
    seconds = int(stripped)
    if seconds > MAX_SECONDS:
        raise ThresholdError(f"{source} must be at most {MAX_SECONDS} seconds, got {text!r}")
    return seconds


def resolve(override: int | None = None, environ: Mapping[str, str] | None = None) -> int:
    """The threshold for one cycle: the override if given, else ZOMBIE_THRESHOLD_SECONDS as it is
    now (read at every call, so a changed environment counts from the next cycle), else 120."""
    if override is not None:
        if override < 0 or override > MAX_SECONDS:
            raise ThresholdError(f"--threshold-seconds must be between 0 and {MAX_SECONDS}, got {override}")
        return override
    text = (os.environ if environ is None else environ).get(ENVIRONMENT_VARIABLE)
    if text is None:
        return DEFAULT_SECONDS
    return parse(text, source=ENVIRONMENT_VARIABLE)
