"""The verdict on a load's history, in one place for every proof that records one: read the
ledger's terminal attempts as the auditor, check the history against them (runner/harness/history.py),
write it to reports/history/, and hold it to what a valid history is."""

from __future__ import annotations

from collections.abc import Callable

from runner.client import Role
from runner.harness import history as history_mod
from tests.helpers.support import ProofRecord, role_connection


def judge_history(url: str, history: history_mod.History, proof: ProofRecord, *,
                  keep: Callable[[history_mod.TerminalAttempt], bool] = lambda attempt: True,
                  ) -> history_mod.Verdict:
    """Check `history` against the ledger after the load's drain: nothing lost, unexpected,
    duplicated, unresolved, re-created or un-recorded, and every key enqueued terminal. `keep`
    leaves out terminal attempts that are not the load's (a seeded ledger). Returns the verdict,
    for the proof's own checks."""
    with role_connection(url, Role.AUDITOR.value, name="history-auditor") as auditor:
        terminal = [t for t in history_mod.read_terminal_attempts(auditor) if keep(t)]
    verdict = history_mod.check(history, terminal)
    path = history_mod.write(history, verdict, proof.report_directory("history"))
    print(verdict.line(history.name))
    proof.observe(history=verdict.counts, history_file=path.name)
    proof.check("history: nothing lost, unexpected, duplicated, unresolved, re-created or un-recorded",
                want=dict.fromkeys(history_mod.FAULTS, 0), have=verdict.faults)
    proof.check("every key enqueued is terminal", want=verdict.counts["attempted"], have=verdict.counts["terminal"])
    return verdict
