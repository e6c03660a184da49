"""What the proofs of an evidence run did: JUnit XML outcomes joined with the proof records
(reports/proofs/<test>.json: invariants with wanted, observed, pass)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUTCOMES = (("failure", "FAILED"), ("error", "ERROR"), ("skipped", "SKIPPED"))


@dataclass
class ProofResult:
    test_id: str  # classname::name, as JUnit has it
    name: str  # the test node's name, which names its proof record
    status: str  # PASSED | FAILED | ERROR | SKIPPED
    seconds: float
    message: str = ""
    details: str = ""
    record: dict[str, Any] | None = None  # the proof record, when the test wrote one
    record_file: str = ""

    @property
    def failed_invariants(self) -> list[dict[str, Any]]:
        return [item for item in (self.record or {}).get("invariants", []) if not item.get("pass")]


@dataclass
class ProofRun:
    results: list[ProofResult] = field(default_factory=list)
    junit_found: bool = True
    orphan_records: list[str] = field(default_factory=list)  # records no JUnit test case claims

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.status] = counts.get(result.status, 0) + 1
        return counts

    @property
    def passed(self) -> bool:
        return self.junit_found and bool(self.results) and all(r.status == "PASSED" for r in self.results)


def read(junit: Path, records_dir: Path, bundle: Path) -> ProofRun:
    records = {path.stem: path for path in sorted(records_dir.glob("*.json"))} if records_dir.is_dir() else {}
    if not junit.is_file():
        return ProofRun(junit_found=False, orphan_records=sorted(records))
    run = ProofRun()
    for case in ET.parse(junit).getroot().iter("testcase"):
        result = _case(case)
        path = records.pop(result.name.replace("/", "_"), None)
        if path is not None:
            result.record = json.loads(path.read_text())
            result.record_file = path.relative_to(bundle).as_posix()
            if result.status == "PASSED" and result.record.get("outcome") == "FAILED":
                result.status = "FAILED"  # the teardown saw what JUnit counted as a pass
        run.results.append(result)
    run.orphan_records = sorted(records)
    return run


def _case(case: ET.Element) -> ProofResult:
    classname, name = case.get("classname", ""), case.get("name", "")
    result = ProofResult(test_id=f"{classname}::{name}", name=name, status="PASSED",
                         seconds=float(case.get("time", "0") or 0))
    for tag, status in OUTCOMES:
        element = case.find(tag)
        if element is not None:
            result.status = status
            result.message = element.get("message", "")
            result.details = (element.text or "").strip()
            break
    return result
