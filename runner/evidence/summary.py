"""summary.md of an evidence bundle: the page a reviewer reads first."""

from __future__ import annotations

import json
from typing import Any

from runner.evidence.guardrails import Guardrail
from runner.evidence.proof_results import ProofResult, ProofRun

MAX_DETAIL = 3000


def render(run: dict[str, Any], guardrails: list[Guardrail], proofs: ProofRun, collected: dict[str, Any]) -> str:
    lines = [f"# Evidence {run['bundle']}: {run['status']}", ""]
    lines += _environment(run)
    lines += ["## Guardrails", "", "| guardrail | status | checked | offenders |", "|---|---|---|---|"]
    lines += [f"| {g.name} | {g.status} | {_cell(g.checked, 120)} | {len(g.offenders)} |" for g in guardrails]
    lines += ["", "## Proofs", "", _counts(proofs), ""]
    lines += ["| test | status | invariants held | seconds |", "|---|---|---|---|"]
    lines += [f"| {_cell(r.test_id, 140)} | {r.status} | {_invariants(r)} | {r.seconds:.2f} |" for r in proofs.results]
    lines += ["", "## Reports collected", ""]
    lines += [f"- {name}: {', '.join(files) if files else 'none'}" for name, files in collected["present"].items()]
    lines += [f"- {name}: MISSING (a proof record names reports/{name}/, and this run wrote no file there)"
              for name in collected["missing"]]
    lines += [f"- proof record without a JUnit test case: {name}" for name in proofs.orphan_records]
    lines += _failures(guardrails, proofs, run.get("errors", []))
    return "\n".join(lines) + "\n"


def _environment(run: dict[str, Any]) -> list[str]:
    server = run["server"]
    versions = run["versions"]
    return [
        f"- commit `{run['git']['commit']}`{' (working tree DIRTY)' if run['git']['dirty'] else ''}",
        f"- started {run['started_utc']}, ended {run['ended_utc']}",
        f"- server: {server.get('server_banner', 'unknown')} ({run['database']['where']})",
        "- settings: " + ", ".join(f"{k}={server.get(k)}" for k in
                                   ("synchronous_commit", "fsync", "default_transaction_isolation", "time_zone",
                                    "data_checksums")),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- host {run['host']['name']}, {run['host']['os']}",
        "",
    ]


def _counts(proofs: ProofRun) -> str:
    if not proofs.junit_found:
        return "**No JUnit XML: pytest did not run to the end; see proofs/pytest.log.**"
    return ", ".join(f"{count} {status}" for status, count in sorted(proofs.counts.items())) or "no tests ran"


def _invariants(result: ProofResult) -> str:
    if result.record is None:
        return "no proof record"
    invariants = result.record.get("invariants", [])
    return f"{sum(1 for i in invariants if i.get('pass'))}/{len(invariants)}"


def _failures(guardrails: list[Guardrail], proofs: ProofRun, run_errors: list[str]) -> list[str]:
    lines = ["", "## Failures in full", ""]
    failing_guardrails = [g for g in guardrails if g.status == "FAIL"]
    failing_proofs = [r for r in proofs.results if r.status in ("FAILED", "ERROR")]
    if not failing_guardrails and not failing_proofs and proofs.junit_found and not run_errors:
        return lines + ["None."]
    for error in run_errors:
        lines += ["### the run itself", "", "```", error[:MAX_DETAIL], "```", ""]
    for guardrail in failing_guardrails:
        lines += [f"### guardrail {guardrail.name}: FAIL", "", f"Rule: {guardrail.rule}", ""]
        lines += [f"- `{o['object']}`: {o['detail']}" for o in guardrail.offenders]
        lines.append("")
    for result in failing_proofs:
        lines += [f"### {result.test_id}: {result.status}", ""]
        for item in result.failed_invariants:
            lines += [f"- invariant: {item['name']}", f"  - have: `{json.dumps(item.get('observed'))}`",
                      f"  - want: `{json.dumps(item.get('wanted'))}`"]
        if result.record_file:
            lines.append(f"- proof record: {result.record_file}")
        lines += ["", "```", (result.message + "\n" + result.details).strip()[:MAX_DETAIL], "```", ""]
    return lines


def _cell(text: str, limit: int) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
