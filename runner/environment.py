"""Where and with what an evidence run ran: git state, tool versions, host, server settings."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from runner import db
from runner.schema import package

REPO = package.SOURCE_SQL_DIR.parent  # the checkout: evidence and bench are tools of a checkout


def git_state(repo: Path = REPO) -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown"
    status = git("status", "--porcelain")
    return {"commit": commit, "short": git("rev-parse", "--short", "HEAD") or "nogit", "dirty": bool(status),
            "dirty_files": status.splitlines()[:50]}


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for distribution in ("psycopg", "pytest", "sqlfluff"):
        try:
            found[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            found[distribution] = "not installed"
    return found


def host() -> dict[str, str]:
    pretty = ""
    os_release = Path("/etc/os-release")
    if os_release.is_file():
        for line in os_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip('"')
    return {"name": socket.gethostname(), "os": f"{pretty or platform.system()} ({platform.platform()})"}


def server_settings(url: str) -> dict[str, str]:
    with db.connection(url, application_name="outbox evidence settings", autocommit=True) as conn:
        cursor = conn.execute(db.named_sql("server_settings"))
        row = db.first_row(cursor)
        return {column.name: value for column, value in zip(cursor.description or [], row, strict=True)}
