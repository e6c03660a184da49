"""`outbox lint migrations`: squawk over the versioned migrations, sql/tables/*.sql.

squawk reads its own settings from .squawk.toml. An applied migration never changes (the ledger
holds its sha256), so it cannot take a `-- squawk-ignore` comment: the warnings accepted on it are
listed in the same file, under [accepted."<file name>"], one `rule = "why"` line each (squawk does
not read that table). A warning nobody accepted fails the lint, and so does an acceptance that no
longer matches a warning. A new migration silences a warning in place, with a comment saying why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runner.schema import package

CONFIG = package.SOURCE_SQL_DIR.parent / ".squawk.toml"
MIGRATIONS = package.SOURCE_SQL_DIR / "tables"
SHOWN_AS = MIGRATIONS.relative_to(CONFIG.parent).as_posix()  # sql/tables


class LintError(RuntimeError):
    """squawk could not run, or its configuration is malformed."""


@dataclass(frozen=True)
class Finding:
    file: str  # the migration's file name
    line: int  # 1-based
    rule: str
    message: str

    def describe(self) -> str:
        return f"{SHOWN_AS}/{self.file}:{self.line}: {self.rule}: {self.message}"


def accepted(config: Path = CONFIG) -> dict[tuple[str, str], str]:
    """(file name, rule) -> why, from the [accepted] table of .squawk.toml."""
    table = tomllib.loads(config.read_text()).get("accepted", {})
    found = {}
    for file, rules in table.items():
        for rule, why in rules.items():
            if not isinstance(why, str) or not why.strip():
                raise LintError(f"{config.name}: [accepted.{file!r}] {rule} needs a reason, a non-empty string")
            found[(file, rule)] = why
    return found


def squawk_binary() -> str:
    """squawk beside this Python (the venv's, from squawk-cli), else on PATH."""
    beside = Path(sys.executable).parent / "squawk"
    found = str(beside) if beside.is_file() else shutil.which("squawk")
    if found is None:
        raise LintError("squawk not found: install the dev extras (pip install -e '.[dev]', as make lint does), "
                        "which pin squawk-cli")
    return found


def findings(files: list[Path], config: Path = CONFIG) -> list[Finding]:
    """Every squawk warning on `files`, with the settings of `config`."""
    command = [squawk_binary(), "--config", str(config), "--reporter", "json", *map(str, files)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):
        raise LintError(f"squawk failed with exit code {result.returncode}:\n{result.stdout}{result.stderr}")
    try:
        reported = json.loads(result.stdout or "[]")
    except json.JSONDecodeError as exc:
        raise LintError(f"squawk printed no JSON ({exc}):\n{result.stdout}{result.stderr}") from exc
    # squawk's JSON counts lines from 0.
    return [Finding(file=Path(item["file"]).name, line=item["line"] + 1, rule=item["rule_name"],
                    message=item["message"]) for item in reported]


def report(found: list[Finding], accepted_warnings: dict[tuple[str, str], str], say: Callable[[str], None]) -> int:
    """Print the warnings; 0 when each one is accepted and each acceptance still matches one."""
    failures = [f for f in found if (f.file, f.rule) not in accepted_warnings]
    for finding in failures:
        say(finding.describe())
    used = {(f.file, f.rule) for f in found}
    stale = [key for key in accepted_warnings if key not in used]
    for file, rule in stale:
        say(f"{CONFIG.name}: [accepted.{file!r}] {rule} matches no warning any more: remove it")
    say(f"squawk: {len(found)} warnings on {SHOWN_AS}/, {len(found) - len(failures)} accepted in "
        f"{CONFIG.name}: {'FAILED' if failures or stale else 'OK'}")
    return 1 if failures or stale else 0


def main(say: Callable[[str], None] = print) -> int:
    files = sorted(MIGRATIONS.glob("*.sql"))
    if not files:
        raise LintError(f"no migrations found in {MIGRATIONS}")
    return report(findings(files), accepted(), say)
