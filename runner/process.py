"""What the long-running `outbox` processes share: JSON log lines on stdout, and stopping on a signal."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

_WRITE = threading.Lock()


def emit_json(record: dict[str, Any]) -> None:
    """One JSON log line on stdout, flushed at once so a supervisor sees it as it happens; one
    line at a time, whichever thread writes it."""
    line = json.dumps({**record, "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds")},
                      default=_jsonable) + "\n"
    with _WRITE:
        sys.stdout.write(line)
        sys.stdout.flush()


def _jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


class StopOnSignal:
    """SIGTERM and SIGINT only ask the process to stop: the work in progress finishes first.
    Install it from the main thread."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self._event = threading.Event()
        self.received: str | None = None
        self._on_stop: list[Callable[[], None]] = []
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def _handle(self, signum: int, _frame: object) -> None:
        self.received = signal.Signals(signum).name
        self._event.set()
        for callback in self._on_stop:
            callback()

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Calls `callback` (from the main thread, which never holds a worker's lock) when a stop is
        asked for: it ends waits other than this object's own."""
        self._on_stop.append(callback)

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Waits up to `seconds`; True when a stop was asked for (before or during the wait)."""
        return self._event.wait(seconds)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
