"""Reading a retired item says it was retired, when and where it was exported (issue 25, item 8).

item_history (by id or by key) and `outbox show` of an item whose partition retention retired
answered PO003 "unknown", with a hint to look it up by the key just given: an operator could
conclude the payment never existed and send it again under a new key. They now answer PO034
naming the item, the partition, when it was retired and the file it was exported to; release or
fail of such an item is PO030 (it is terminal, not quarantined), not PO003.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from runner.client import Client, Role
from runner.operator import show
from runner.schema import retention
from tests.conftest import Database
from tests.helpers.partitions import backdated_item, dispatch_all, month_partition
from tests.helpers.support import ProofRecord


def error_of(call: object) -> tuple[str | None, str]:
    try:
        call()  # type: ignore[operator]
    except psycopg.Error as exc:
        return exc.sqlstate, str(exc)
    return None, ""


pytestmark = pytest.mark.proof


def test_a_retired_item_reads_as_retired(clean_database: Database, proof: ProofRecord, tmp_path: Path) -> None:
    url = clean_database.url
    name = month_partition(url, 2020, 10)
    item = backdated_item(url, "rr-oct-done", "2020-10-10 12:00+00")
    dispatch_all(url)
    code = retention.run(url, retention.Options(window="30 days", export_dir=tmp_path), emit=lambda line: None)
    proof.check("October 2020 is retired and exported", want=(0, True),
                have=(code, (tmp_path / f"{name}.csv").exists()))
    outbox_id = str(item["outbox_id"])
    with Client.connect(url, Role.READONLY, name="reader") as client:
        by_key = error_of(lambda: client.item_history_by_key("instr-rr-oct-done", "rr-oct-done"))
        by_id = error_of(lambda: client.item_history(outbox_id))
    shown = error_of(lambda: show.history(url, ["instr-rr-oct-done", "rr-oct-done"]))
    proof.observe(by_key=by_key[1], by_id=by_id[1])
    for label, (sqlstate, message) in (("item_history by key", by_key), ("item_history by id", by_id),
                                       ("outbox show", shown)):
        proof.check(f"{label}: PO034 naming the item, the partition, the retirement and the export",
                    want=("PO034", True, True, True, True),
                    have=(sqlstate, outbox_id in message, name in message, "retired its history at 20" in message,
                          str(tmp_path / f"{name}.csv") in message))
    with Client.connect(url, Role.OPERATOR, name="operator") as client:
        decisions = [error_of(lambda: client.release_quarantined(outbox_id, reason="x", actor="a"))[0],
                     error_of(lambda: client.fail_quarantined(outbox_id, reason="x", actor="a"))[0]]
    proof.check("release and fail of the retired item are PO030", want=["PO030", "PO030"], have=decisions)
