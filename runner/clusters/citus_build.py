"""Citus for the server pg_config names: built once from CITUS_SOURCE, cached, installed.

Citus is in neither Debian's nor PyPI's packages. CITUS_SOURCE names a source tarball
(citus-<version>.tar.gz, as tagged upstream); unset, the first `shared/vendor/citus-*.tar.gz`
found beside the clone or above it (../shared/vendor for /work/main) is used. Patches named
citus-<version>-pg<server major>-*.patch beside the tarball are applied in name order (Debian's
15.20 needs one; the vendor README says why). The tree is unpacked and built in a cache outside
the clone, <cache>/citus-<version>-pg<server version>/ (cache: OUTBOX_CITUS_CACHE, else
/var/cache/payment-outbox as root, else ~/.cache/payment-outbox), and installed into the server's
lib and extension directories. Nothing is built when the server already has a citus.so of that
version (a build of ours, or Citus's own packages): a second run costs a file read.

    python -m runner.clusters.citus_build        # exit 0 once the server has Citus
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARBALL = re.compile(r"citus-(\d+\.\d+\.\d+)\.tar\.gz$")
# No LLVM bitcode for the server's JIT inliner: it would compile every file a second time (as long
# again as the build itself) for an optimisation the package's queries do not use.
MAKE_FLAGS = ("with_llvm=no",)


class CitusBuildError(RuntimeError):
    """Citus could not be found, built or installed; the message says what to do."""


@dataclass(frozen=True)
class Server:
    pg_config: Path
    version: str  # "15.20"
    pkglibdir: Path
    sharedir: Path

    @property
    def major(self) -> str:
        return self.version.split(".")[0]


def server(pg_config: str | None = None) -> Server:
    """The server pg_config names (PG_CONFIG, else the one on PATH)."""
    command = pg_config or os.environ.get("PG_CONFIG") or shutil.which("pg_config")
    if not command:
        raise CitusBuildError("no pg_config: install postgresql-server-dev-<major> or set PG_CONFIG")
    out = subprocess.run([command, "--version", "--pkglibdir", "--sharedir"], capture_output=True,
                         text=True, check=True).stdout.split("\n")
    match = re.search(r"PostgreSQL (\d+(?:\.\d+)?)", out[0])
    if not match:
        raise CitusBuildError(f"{command} --version said {out[0]!r}; expected 'PostgreSQL <version>'")
    bindir = subprocess.run([command, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
    real = Path(bindir) / "pg_config"
    return Server(real if real.is_file() else Path(command), match.group(1), Path(out[1]), Path(out[2]))


def source_tarball() -> Path:
    configured = os.environ.get("CITUS_SOURCE")
    if configured:
        path = Path(configured)
        if not path.is_file() or not TARBALL.search(path.name):
            raise CitusBuildError(f"CITUS_SOURCE={configured}: expected a file citus-<x.y.z>.tar.gz")
        return path
    for directory in [REPO, *REPO.parents]:
        found = sorted((directory / "shared" / "vendor").glob("citus-*.tar.gz"))
        found = [path for path in found if TARBALL.search(path.name)]
        if found:
            return found[-1]
    raise CitusBuildError(
        "no Citus source: set CITUS_SOURCE to a citus-<version>.tar.gz (git archive of a tag of "
        "citusdata/citus), or install Citus from Citus's packages")


def source_version(tarball: Path) -> str:
    match = TARBALL.search(tarball.name)
    assert match is not None
    return match.group(1)


def installed_version(srv: Server) -> str | None:
    """The version of the citus.so the server would load, read from the library itself."""
    library = srv.pkglibdir / "citus.so"
    if not library.is_file():
        return None
    match = re.search(rb"Citus (\d+\.\d+\.\d+)", library.read_bytes())
    return match.group(1).decode() if match else "unknown"


def cache_root() -> Path:
    configured = os.environ.get("OUTBOX_CITUS_CACHE")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/payment-outbox")
    return Path.home() / ".cache" / "payment-outbox"


def patches(tarball: Path, version: str, srv: Server) -> list[Path]:
    return sorted(tarball.parent.glob(f"citus-{version}-pg{srv.major}-*.patch"))


def ensure(pg_config: str | None = None, log: bool = True) -> str:
    """Citus of the source's version on the server; returns the version. Builds only if missing."""
    srv = server(pg_config)
    try:
        tarball = source_tarball()
    except CitusBuildError:
        installed = installed_version(srv)
        if installed is None:
            raise
        return installed  # Citus from Citus's packages (or built before): nothing to build, no source needed
    version = source_version(tarball)
    if installed_version(srv) == version:
        return version
    workdir = cache_root() / f"citus-{version}-pg{srv.version}"
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once: the second waits, then finds it installed
        if installed_version(srv) == version:
            return version
        _build(srv, tarball, version, workdir, log)
    found = installed_version(srv)
    if found != version:
        raise CitusBuildError(f"built Citus {version}, but {srv.pkglibdir}/citus.so says {found}")
    return version


def _build(srv: Server, tarball: Path, version: str, workdir: Path, log: bool) -> None:
    tree = workdir / f"citus-{version}"
    stamp = workdir / "built"
    if not stamp.exists():
        shutil.rmtree(tree, ignore_errors=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(workdir, filter="data")
        if not (tree / "configure").is_file():
            raise CitusBuildError(f"{tarball} did not unpack to {tree}/configure")
        for patch in patches(tarball, version, srv):
            _step(["patch", "-p1", "-i", str(patch)], tree, workdir, log, f"apply {patch.name}")
        _step(["./configure", f"PG_CONFIG={srv.pg_config}", "--without-libcurl"], tree, workdir, log,
              "configure")
        _step(["make", f"-j{os.cpu_count() or 1}", *MAKE_FLAGS], tree, workdir, log, "make")
        stamp.touch()
    if not os.access(srv.pkglibdir, os.W_OK):
        raise CitusBuildError(f"Citus {version} is built in {tree} but {srv.pkglibdir} is not writable: "
                              f"run `make -C {tree} install` as root")
    _step(["make", "install", *MAKE_FLAGS], tree, workdir, log, "make install")


def _step(command: list[str], cwd: Path, workdir: Path, log: bool, name: str) -> None:
    if log:
        print(f"citus-build: {name} (log: {workdir / 'build.log'})", file=sys.stderr, flush=True)
    with open(workdir / "build.log", "a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = (workdir / "build.log").read_text(errors="replace")[-3000:]
        raise CitusBuildError(
            f"{name} failed (exit {result.returncode}); the build needs postgresql-server-dev-<major> "
            f"liblz4-dev libzstd-dev libkrb5-dev libselinux1-dev libxslt1-dev libpam0g-dev "
            f"libreadline-dev. Last lines of {workdir / 'build.log'}:\n{tail}")


def main() -> int:
    try:
        version = ensure()
    except CitusBuildError as exc:
        print(f"citus-build: {exc}", file=sys.stderr)
        return 1
    print(f"citus-build: Citus {version} installed for {server().pg_config}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
