"""Retention's export is durable before the partition is dropped (issue 25, item 11).

The export is written to a temporary file, flushed to disk and renamed; the rename itself lives in
the directory, and a power loss before the directory reaches the disk can lose the file, the only
copy once the partition is dropped. The run now fsyncs the directory after the rename, and before
_retire_partition drops the partition: the order of the three is recorded here (os.fsync and the
drop wrapped, nothing else changed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from runner.client import Client
from runner.schema import retention
from tests.conftest import Database
from tests.helpers.partitions import backdated_item, dispatch_all, month_partition
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof


def test_the_export_directory_is_synced_before_the_drop(clean_database: Database, proof: ProofRecord,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = clean_database.url
    name = month_partition(url, 2020, 9)
    backdated_item(url, "ed-sep-done", "2020-09-10 12:00+00")
    dispatch_all(url)
    events: list[str] = []
    real_fsync, real_retire = os.fsync, Client.retire_partition

    def fsync(fd: int) -> None:
        target = Path(os.readlink(f"/proc/self/fd/{fd}"))
        events.append(f"fsync {'directory' if target.is_dir() else target.name}")
        real_fsync(fd)

    def retire_partition(self: Client, partition_name: str, exported_to: Any) -> None:
        events.append(f"drop {partition_name}")
        real_retire(self, partition_name, exported_to)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(Client, "retire_partition", retire_partition)
    code = retention.run(url, retention.Options(window="30 days", export_dir=tmp_path), emit=lambda line: None)
    proof.check("the export file is synced, then its directory, then the partition dropped",
                want=(0, [f"fsync .{name}.csv.partial", "fsync directory", f"drop {name}"]), have=(code, events))
