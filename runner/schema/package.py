"""Where the SQL package is, and the facts read from it: its files and its runtime roles.

In a checkout the package is the repository's sql/ tree; an installed wheel carries the same tree
as runner/package_sql/ (pyproject.toml maps it there). Knows nothing of payments.
"""

from __future__ import annotations

import re
from pathlib import Path

RUNNER_DIR = Path(__file__).resolve().parent.parent
INSTALLED_SQL_DIR = RUNNER_DIR / "package_sql"
SOURCE_SQL_DIR = RUNNER_DIR.parent / "sql"
ROLES_FILE = Path("roles") / "payment_outbox_roles.sql"
# The role names in the roles file's ARRAY[...]: the one place they are written.
ROLE_NAME = re.compile(r"'(outbox_[a-z_]+)'")


class PackageError(RuntimeError):
    """The SQL package is missing or incomplete where the runner looked for it."""


def sql_root() -> Path:
    """The SQL package's root: the wheel's copy when installed, else the checkout's sql/."""
    for root in (INSTALLED_SQL_DIR, SOURCE_SQL_DIR):
        if (root / "tables").is_dir():
            return root
    raise PackageError(f"the SQL package is missing: neither {INSTALLED_SQL_DIR} (an installed wheel) nor "
                       f"{SOURCE_SQL_DIR} (a checkout) has a tables/ folder. Reinstall payment-outbox.")


def require_complete(root: Path) -> None:
    """Refuses a tree that would apply nothing or half a package, naming what is missing."""
    missing = [str(root / part) for part in ("tables", "functions", ROLES_FILE) if not (root / part).exists()]
    if not missing and not any((root / "tables").glob("*.sql")):
        missing.append(f"{root / 'tables'}/*.sql")
    if missing:
        raise PackageError(f"the SQL package at {root} is incomplete; missing: {', '.join(missing)}")


def runtime_roles(root: Path | None = None) -> tuple[str, ...]:
    """The runtime roles, as the roles file creates them."""
    text = ((root or sql_root()) / ROLES_FILE).read_text(encoding="utf-8")
    return tuple(dict.fromkeys(ROLE_NAME.findall(text)))
