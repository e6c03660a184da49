"""A throwaway PgBouncer in transaction pooling in front of one PostgreSQL server, started from
deploy/pgbouncer/pgbouncer.ini with only its addresses, ports, files and auth file replaced: the
pooling settings proven are the deploy example's. `retarget()` points it at another server and
RELOADs it (SIGHUP), as a Patroni on_role_change callback does after a failover."""

from __future__ import annotations

import configparser
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg.conninfo import make_conninfo

from runner.clusters import processes
from runner.clusters.embedded import DATABASE_NAME, ClusterError

REPO = Path(__file__).resolve().parents[2]
DEPLOY_INI = REPO / "deploy" / "pgbouncer" / "pgbouncer.ini"
START_SECONDS = 30.0


@dataclass
class PgBouncer:
    """`with PgBouncer(server_port, users) as pooler:`; users maps login to password. Its files
    are in a temporary directory of its own, removed at stop (pytest's tmp_path is private to root,
    where the `postgres` account PgBouncer runs as cannot read them)."""

    server_port: int
    users: dict[str, str]
    workdir: Path = Path()
    ini: Path = DEPLOY_INI
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    settings: dict[str, str] = field(default_factory=dict)
    _account: Any = None

    def url(self, user: str, database: str = DATABASE_NAME) -> str:
        return make_conninfo(host="127.0.0.1", port=str(self.port), user=user, dbname=database,
                             password=self.users[user], connect_timeout="3")

    def __enter__(self) -> PgBouncer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).is_file():
            raise ClusterError("PgBouncer is not installed: apt-get install pgbouncer")
        self._account = processes.account()
        self.workdir = Path(tempfile.mkdtemp(prefix="payment-outbox-pgbouncer-"))
        processes.give(self.workdir, self._account)
        self.port = processes.free_port()
        self._write_config()
        self.process = processes.start([binary, str(self.workdir / "pgbouncer.ini")], self.workdir / "pgbouncer.out",
                                       self._account, self.workdir)
        processes.wait_for("PgBouncer to accept connections", self._accepting, START_SECONDS,
                           log=lambda: processes.tail(self.workdir / "pgbouncer.log"))

    def stop(self) -> None:
        processes.stop(self.process)
        if self.workdir != Path():
            shutil.rmtree(self.workdir, ignore_errors=True)

    def retarget(self, server_port: int) -> None:
        """The primary moved: rewrite [databases] and RELOAD."""
        self.server_port = server_port
        self._write_config()
        if self.process is not None:
            self.process.send_signal(signal.SIGHUP)

    def _accepting(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise ClusterError(f"PgBouncer exited with {self.process.returncode}:\n"
                               f"{processes.tail(self.workdir / 'pgbouncer.log')}"
                               f"{processes.tail(self.workdir / 'pgbouncer.out')}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def _write_config(self) -> None:
        parser = configparser.ConfigParser(interpolation=None, delimiters=("=",), comment_prefixes=(";", "#"))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(self.ini)
        self.settings = dict(parser["pgbouncer"])
        parser["databases"] = {DATABASE_NAME: f"host=127.0.0.1 port={self.server_port} dbname={DATABASE_NAME}"}
        parser["pgbouncer"].update({
            "listen_addr": "127.0.0.1", "listen_port": str(self.port), "unix_socket_dir": "",
            "auth_file": str(self.workdir / "userlist.txt"),
            "logfile": str(self.workdir / "pgbouncer.log"), "pidfile": str(self.workdir / "pgbouncer.pid"),
        })
        userlist = self.workdir / "userlist.txt"
        userlist.write_text("".join(f'"{user}" "{password}"\n' for user, password in self.users.items()))
        processes.give(userlist, self._account)
        config = self.workdir / "pgbouncer.ini"
        with config.open("w") as out:
            parser.write(out)
        processes.give(config, self._account)
