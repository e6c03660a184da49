"""Release points: sql/ as a deployed database can have it, kept in releases/ for the upgrade proofs.

A release point is the state of the package's sql/ (roles, tables, views, functions) at the last
commit of main that had a given set of versioned files: the newest state a database migrated
then can be in. Each is kept as a snapshot, releases/<name>/sql/, and named in
releases/releases.toml with its commit and the git tree id of each snapshot directory, so the
proofs run from any checkout (a shallow clone or a tarball too) and a test can show, with or
without the history, that each snapshot is byte for byte what that commit held.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RELEASES_DIR = REPO / "releases"
MANIFEST = RELEASES_DIR / "releases.toml"
SNAPSHOT_DIRS = ("roles", "tables", "views", "functions")


class ReleaseError(RuntimeError):
    """A release point is malformed, missing, or differs from what the manifest records."""


@dataclass(frozen=True)
class ReleasePoint:
    name: str  # the number of its last versioned file, e.g. "0006"
    commit: str
    trees: dict[str, str]  # snapshot directory -> git tree id of sql/<directory> at `commit`
    note: str

    @property
    def root(self) -> Path:
        """The snapshot, laid out like sql/: pass it to migrate.migrate(root=...)."""
        return RELEASES_DIR / self.name / "sql"


@dataclass(frozen=True)
class Unreachable:
    commit: str
    reason: str


def points() -> list[ReleasePoint]:
    """Every release point, oldest first."""
    manifest = _manifest()
    found = [ReleasePoint(name=p["name"], commit=p["commit"], trees=dict(p["trees"]), note=p.get("note", ""))
             for p in manifest.get("point", [])]
    return sorted(found, key=lambda p: p.name)


def unreachable() -> list[Unreachable]:
    """States of sql/tables/ that were on main but from which `outbox migrate` refuses to upgrade."""
    return [Unreachable(commit=u["commit"], reason=u["reason"]) for u in _manifest().get("unreachable", [])]


def point(name: str) -> ReleasePoint:
    for found in points():
        if found.name == name:
            return found
    raise ReleaseError(f"no release point {name!r} in {MANIFEST.relative_to(REPO)}")


def _manifest() -> dict:
    with MANIFEST.open("rb") as handle:
        return tomllib.load(handle)


def tree_id(directory: Path) -> str:
    """The git tree id of a flat directory of text files, computed as git does (LF line endings,
    mode 100644), so a snapshot can be checked against the manifest without git or its history."""
    entries = []
    for path in sorted(directory.iterdir(), key=lambda p: p.name.encode()):
        if not path.is_file():
            raise ReleaseError(f"{path}: a snapshot directory holds files only")
        data = path.read_bytes().replace(b"\r\n", b"\n")
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).digest()  # git's object id: SHA-1 by git's design
        entries.append(b"100644 " + path.name.encode() + b"\0" + blob)
    body = b"".join(entries)
    return hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()  # git's object id: SHA-1 by git's design


def verify(release: ReleasePoint) -> list[str]:
    """What differs between the snapshot and the tree ids the manifest records; empty when none."""
    problems = []
    present = sorted(p.name for p in release.root.iterdir()) if release.root.is_dir() else []
    if sorted(release.trees) != present:
        problems.append(f"{release.name}: snapshot holds {present}, manifest records {sorted(release.trees)}")
    for directory, recorded in sorted(release.trees.items()):
        path = release.root / directory
        if path.is_dir() and tree_id(path) != recorded:
            problems.append(f"{release.name}: sql/{directory} has tree {tree_id(path)}, manifest records {recorded}")
    return problems


def git_trees(commit: str, repo: Path = REPO) -> dict[str, str] | None:
    """sql/<directory> tree ids at `commit` from git, None when the clone lacks the commit (a
    shallow clone, a tarball). Raises when git itself fails (not installed, unsafe directory)."""
    probe = subprocess.run(["git", "-C", str(repo), "rev-parse", "--git-dir"], capture_output=True, text=True,
                           check=False)
    if probe.returncode != 0:
        if "not a git repository" in probe.stderr:
            return None
        raise ReleaseError(f"git rev-parse failed in {repo}: {probe.stderr.strip()}")
    trees = {}
    for directory in SNAPSHOT_DIRS:
        result = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet",
                                 f"{commit}^{{commit}}:sql/{directory}"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            trees[directory] = result.stdout.strip()
        elif directory == "tables":
            return None
    return trees


def snapshot(name: str, commit: str, repo: Path = REPO) -> str:
    """Write releases/<name>/sql/ from `commit` with git archive; return the manifest entry to add."""
    target = RELEASES_DIR / name / "sql"
    if target.exists():
        raise ReleaseError(f"{target.relative_to(REPO)} exists; release points never change")
    trees = git_trees(commit, repo)
    if trees is None:
        raise ReleaseError(f"{commit} is not in this clone, or has no sql/tables/")
    full = subprocess.run(["git", "-C", str(repo), "rev-parse", f"{commit}^{{commit}}"], capture_output=True,
                          text=True, check=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", full,
                              *[f"sql/{d}" for d in trees]], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(RELEASES_DIR / name, filter="data")
    entries = "\n".join(f'{directory} = "{tree}"' for directory, tree in trees.items())
    return f'[[point]]\nname = "{name}"\ncommit = "{full}"\nnote = ""\n[point.trees]\n{entries}\n'


def file_at(commit: str, path: str, repo: Path = REPO) -> str | None:
    """The text of `path` at `commit`, None when the commit has no such file."""
    result = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, text=True,
                            check=False)
    return result.stdout if result.returncode == 0 else None
