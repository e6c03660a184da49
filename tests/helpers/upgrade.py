"""Helpers of the upgrade proofs: a database brought to a release point, `outbox migrate` run in a
thread of its own, and the backend it runs on, found so a proof can watch it wait."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from runner.clusters import scratch
from runner.schema import migrate

PAYLOAD = {"amount": "12.00", "currency": "EUR"}
MIGRATE_APPLICATION_NAME = "outbox migrate"


def migrate_to(url: str, root: Path | None = None) -> None:
    """As the owner: migrate to the SQL package at `root` (a release point; the current package
    when None) and let the tests act as each runtime role (runner/clusters/scratch.py)."""
    scratch.prepare(url, root=root)


def backend_of(monitor: psycopg.Connection, application_name: str, timeout: float = 60.0) -> int:
    """The pid of the backend with this application_name in the monitor's database, once it exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = monitor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                              "AND datname = current_database()", (application_name,)).fetchone()
        if row is not None:
            return row[0]
        time.sleep(0.005)  # polling period of the lookup, not a synchronisation
    raise AssertionError(f"no backend named {application_name!r} within {timeout}s")


class MigrateThread(threading.Thread):
    """`outbox migrate` in a thread of its own, so the proof can watch it wait."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(name="migrate", daemon=True)
        self.url, self.options = url, options
        self.lines: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            migrate.migrate(self.url, say=self.lines.append, **self.options)
        except BaseException as exc:  # noqa: BLE001 - reported by the proof
            self.error = exc
