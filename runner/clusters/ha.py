"""A throwaway high-availability cluster for `make prove-ha`: one etcd and two Patroni-managed
PostgreSQL nodes on 127.0.0.1, ports chosen free at run time, in a temporary directory removed at
exit (after a failure or Ctrl-C too), run as the `postgres` OS user when we are root.

Synchronous mode is on unless asked otherwise (synchronous=False: the asynchronous case the proofs
measure). The TTL is short (6 s, loop_wait 1 s) so a failover takes seconds. `start()` returns once
there is a leader and, in synchronous mode, a streaming synchronous standby; `kill_leader()`
SIGKILLs the leader's Patroni and then its postmaster and returns once Patroni's REST API and the
server itself say the other node leads. `url` is the libpq multi-host URL that follows the leader
(target_session_attrs=read-write). Passwords are random per run (scram-sha-256 on TCP).

One cluster serves several proofs: `rejoin()` brings a killed node back as a replica of the new
leader (its data directory removed and cloned again by Patroni, as `patronictl reinit` does: an
old leader killed under asynchronous replication holds WAL the new leader never had),
`set_synchronous()` switches Patroni's synchronous mode through its REST API (PATCH /config), and
`reset_database()` recreates the package's database from a migrated template.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from runner.clusters import processes
from runner.clusters.embedded import DATABASE_NAME, OWNER_ROLE, ClusterError, find_bindir

SCOPE = "payment-outbox-ha"
TEMPLATE_DATABASE = f"{DATABASE_NAME}_template"
TTL_SECONDS = 6
LOOP_WAIT_SECONDS = 1
RETRY_TIMEOUT_SECONDS = 2
START_SECONDS = 120.0
FAILOVER_SECONDS = 60.0


@dataclass
class Node:
    name: str
    pg_port: int
    api_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "patroni.log"

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def api(self, path: str) -> Any:
        """Patroni's REST API answer (JSON), or None when the node does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}{path}", timeout=2) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:  # /leader and friends answer 503 with a JSON body
            try:
                return json.loads(exc.read() or b"null")
            except ValueError:
                return None
        except (OSError, ValueError):
            return None


@dataclass
class HACluster:
    """`with HACluster() as ha:`; `ha.url` is the owner's multi-host URL of the database."""

    synchronous: bool = True
    bindir: Path = field(default_factory=find_bindir)
    workdir: Path | None = None
    nodes: list[Node] = field(default_factory=list)
    etcd_port: int = 0
    etcd_process: subprocess.Popen[bytes] | None = None
    passwords: dict[str, str] = field(default_factory=dict)
    killed: list[str] = field(default_factory=list)
    killed_at: float = 0.0  # time.time() right after the SIGKILLs of the last kill_leader()
    _account: Any = None

    # --- URLs ---

    def node_url(self, node: Node, user: str = OWNER_ROLE, database: str = DATABASE_NAME) -> str:
        return make_conninfo(host="127.0.0.1", port=str(node.pg_port), user=user, dbname=database,
                             password=self.passwords[user], connect_timeout="3")

    def multi_host_url(self, user: str = OWNER_ROLE, database: str = DATABASE_NAME) -> str:
        """Every node; libpq tries them in order and keeps the one that accepts writes."""
        return make_conninfo(host=",".join("127.0.0.1" for _ in self.nodes),
                             port=",".join(str(n.pg_port) for n in self.nodes), user=user, dbname=database,
                             password=self.passwords[user], target_session_attrs="read-write",
                             connect_timeout="3")

    @property
    def url(self) -> str:
        return self.multi_host_url()

    def admin_url(self, node: Node) -> str:
        return self.node_url(node, user="postgres", database="postgres")

    # --- lifecycle ---

    def __enter__(self) -> HACluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        if shutil.which("patroni") is None or shutil.which("etcd") is None:
            raise ClusterError("the HA cluster needs patroni and etcd: apt-get install patroni etcd-server")
        self._account = processes.account()
        self.workdir = Path(tempfile.mkdtemp(prefix="payment-outbox-ha-"))
        processes.give(self.workdir, self._account)
        self.passwords = {user: secrets.token_hex(16) for user in ("postgres", "replicator", OWNER_ROLE)}
        self._start_etcd()
        self.nodes = [self._node(f"node{n}") for n in (1, 2)]
        first, second = self.nodes  # the first bootstraps, the second clones it once it leads
        self._start_patroni(first)
        processes.wait_for(f"{first.name} to lead", lambda: self._role(first) == "leader", START_SECONDS,
                           log=self.logs)
        self._start_patroni(second)
        self.wait_healthy()
        self._bootstrap()

    def stop(self) -> None:
        for node in self.nodes:  # throwaway: no clean shutdown to wait for
            processes.stop(node.process, seconds=0)
            self._stop_postmaster(node)
            processes.kill_orphans(node.datadir)
        processes.stop(self.etcd_process)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # --- state ---

    def members(self) -> list[dict[str, Any]]:
        """Patroni's /cluster answer from any node that answers."""
        for node in self.nodes:
            if node.name in self.killed:
                continue
            found = node.api("/cluster")
            if isinstance(found, dict) and "members" in found:
                return list(found["members"])
        return []

    def leader(self) -> Node:
        for member in self.members():
            if member.get("role") == "leader" and member.get("state") == "running":
                return self._by_name(member["name"])
        raise ClusterError(f"no running leader: {self.members()}")

    def standby(self) -> Node:
        leader = self.leader()
        return next(n for n in self.nodes if n is not leader)

    def wait_healthy(self) -> None:
        """A running leader and, synchronous: a streaming synchronous standby; asynchronous: a
        streaming replica."""
        want = "sync_standby" if self.synchronous else "replica"

        def healthy() -> bool:
            members = self.members()
            return (any(m.get("role") == "leader" and m.get("state") == "running" for m in members)
                    and any(m.get("role") == want and m.get("state") in ("streaming", "running") for m in members)
                    and self._replica_streams())

        processes.wait_for(f"a leader and a {want} streaming", healthy, START_SECONDS, log=self.logs)

    def set_synchronous(self, on: bool) -> None:
        """Patroni's synchronous mode on or off (dynamic configuration, PATCH /config on the
        leader's REST API); returns once the replica streams in the mode asked for."""
        if on != self.synchronous:
            leader = self.leader()
            body = json.dumps({"synchronous_mode": on}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{leader.api_port}/config", data=body,
                                             method="PATCH", headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                if response.status != 200:
                    raise ClusterError(f"PATCH /config answered {response.status}")
            self.synchronous = on
        self.wait_healthy()

    def rejoin(self) -> None:
        """Every killed node back as a replica of the leader: whatever its killed postmaster left
        running is stopped, its data directory removed, and its Patroni started again, which
        clones the leader (pg_basebackup); returns once the cluster is healthy."""
        for name in list(self.killed):
            node = self._by_name(name)
            processes.stop(node.process)
            processes.kill_orphans(node.datadir)
            shutil.rmtree(node.datadir, ignore_errors=True)
            self._start_patroni(node)
            self.killed.remove(name)
        self.wait_healthy()

    def reset_database(self) -> None:
        """The package's database, dropped and created again from the migrated template (made
        from it the first time): each proof starts from an empty, migrated database."""
        with psycopg.connect(self.admin_url(self.leader()), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE_DATABASE,)).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                    sql.Identifier(TEMPLATE_DATABASE), sql.Identifier(DATABASE_NAME), sql.Identifier(OWNER_ROLE)))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE_NAME)))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                sql.Identifier(DATABASE_NAME), sql.Identifier(TEMPLATE_DATABASE), sql.Identifier(OWNER_ROLE)))

    def cut_replication(self) -> Node:
        """The leader stops sending WAL to its standby, as a network partition between them would:
        its pg_hba.conf refuses replication connections from then on (reloaded, and checked by
        trying one), then its WAL sender is terminated and waited for. Nothing the leader writes
        after this returns reaches the standby. Returns the leader. Under asynchronous
        replication the leader goes on acknowledging commits; a rejoin() of the killed node
        removes the change with its data directory."""
        leader = self.leader()
        hba = leader.datadir / "pg_hba.conf"
        hba.write_text("host replication all 0.0.0.0/0 reject\n" + hba.read_text())
        with psycopg.connect(self.admin_url(leader), autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")

            def refused() -> bool:
                try:
                    psycopg.connect(self.node_url(leader, user="replicator", database="postgres"),
                                    replication="true").close()
                except psycopg.OperationalError as exc:
                    return "pg_hba.conf rejects replication connection" in str(exc)
                return False

            processes.wait_for("the leader to refuse replication connections", refused, START_SECONDS,
                               log=self.logs)
            for (pid,) in conn.execute("SELECT pid FROM pg_stat_replication").fetchall():
                conn.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
            left = conn.execute("SELECT count(*) FROM pg_stat_replication").fetchone()
        if left is None or left[0] != 0:
            raise ClusterError(f"a WAL sender still runs on {leader.name} after it was terminated")
        return leader

    def kill_leader(self, on_killed: Callable[[], None] | None = None) -> tuple[Node, Node]:
        """SIGKILL the leader's Patroni, then its postmaster (no clean shutdown, no hand-over);
        `on_killed` runs right after; returns (old leader, new leader) once the other node leads
        and accepts writes."""
        old = self.leader()
        postmaster = old.postmaster_pid()
        if old.process is not None:
            old.process.send_signal(signal.SIGKILL)
            old.process.wait(10)
        if postmaster is not None:
            try:
                os.kill(postmaster, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.killed_at = time.time()
        self.killed.append(old.name)
        if on_killed is not None:
            on_killed()
        new = next(n for n in self.nodes if n is not old)
        processes.wait_for(f"{new.name} promoted after {old.name} was killed",
                           lambda: self._role(new) == "leader" and self._writable(new), FAILOVER_SECONDS,
                           log=self.logs)
        return old, new

    def logs(self) -> str:
        if self.workdir is None:
            return ""
        return "\n".join(f"--- {n.name} ---\n{processes.tail(n.log)}" for n in self.nodes) + \
            f"\n--- etcd ---\n{processes.tail(self.workdir / 'etcd.log', 1500)}"

    # --- internals ---

    def _node(self, name: str) -> Node:
        assert self.workdir is not None
        directory = self.workdir / name
        directory.mkdir()
        processes.give(directory, self._account)
        return Node(name=name, pg_port=processes.free_port(), api_port=processes.free_port(), directory=directory)

    def _by_name(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def _role(self, node: Node) -> str | None:
        found = node.api("/patroni")
        if not isinstance(found, dict) or found.get("state") != "running":
            return None
        return "leader" if found.get("role") in ("master", "primary") else str(found.get("role"))

    def _writable(self, node: Node) -> bool:
        try:
            with psycopg.connect(self.admin_url(node), autocommit=True) as conn:
                row = conn.execute("SELECT NOT pg_is_in_recovery()").fetchone()
                return bool(row and row[0])
        except psycopg.Error:
            return False

    def _replica_streams(self) -> bool:
        try:
            leader = self.leader()
            with psycopg.connect(self.admin_url(leader), autocommit=True) as conn:
                rows = conn.execute("SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'").fetchall()
        except (psycopg.Error, ClusterError):
            return False
        want = "sync" if self.synchronous else "async"
        return any(row[0] == want for row in rows)

    def _start_etcd(self) -> None:
        assert self.workdir is not None
        self.etcd_port, peer = processes.free_port(), processes.free_port()
        data = self.workdir / "etcd"
        command = ["etcd", "--name", "etcd0", "--data-dir", str(data),
                   "--listen-client-urls", f"http://127.0.0.1:{self.etcd_port}",
                   "--advertise-client-urls", f"http://127.0.0.1:{self.etcd_port}",
                   "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                   "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                   "--initial-cluster", f"etcd0=http://127.0.0.1:{peer}",
                   "--initial-cluster-state", "new", "--initial-cluster-token", secrets.token_hex(8)]
        self.etcd_process = processes.start(command, self.workdir / "etcd.log", self._account, self.workdir)

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.etcd_port}/health", timeout=2) as response:
                    return bool(json.loads(response.read()).get("health") == "true")
            except (OSError, ValueError):
                return False

        processes.wait_for("etcd to answer /health", healthy, START_SECONDS, log=self.logs)

    def _start_patroni(self, node: Node) -> None:
        assert self.workdir is not None
        config = node.directory / "patroni.yml"
        config.write_text(json.dumps(self._patroni_config(node), indent=1))  # YAML is a superset of JSON
        processes.give(config, self._account)
        env = {**os.environ, "PATRONI_LOG_LEVEL": "INFO"}
        node.process = processes.start(["patroni", str(config)], node.log, self._account, node.directory, env)

    def _patroni_config(self, node: Node) -> dict[str, Any]:
        assert self.workdir is not None
        return {
            "scope": SCOPE, "name": node.name,
            "restapi": {"listen": f"127.0.0.1:{node.api_port}", "connect_address": f"127.0.0.1:{node.api_port}"},
            "etcd3": {"host": f"127.0.0.1:{self.etcd_port}"},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL_SECONDS, "loop_wait": LOOP_WAIT_SECONDS, "retry_timeout": RETRY_TIMEOUT_SECONDS,
                    # Asynchronous: the standby may lag by anything and still be promoted (what the
                    # asynchronous proof measures); synchronous: only the synchronous standby is.
                    "maximum_lag_on_failover": 1 << 40,
                    "synchronous_mode": self.synchronous,
                    "postgresql": {"use_pg_rewind": False, "parameters": {
                        "synchronous_commit": "on", "wal_level": "replica", "hot_standby": "on",
                        "max_wal_senders": 5, "max_replication_slots": 5, "wal_keep_size": "128MB",
                        "max_connections": 100, "fsync": "on"}},
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{node.pg_port}", "connect_address": f"127.0.0.1:{node.pg_port}",
                "data_dir": str(node.datadir), "bin_dir": str(self.bindir),
                "pgpass": str(node.directory / "pgpass"),
                # A replica (the second node, a rejoined one) clones without waiting for a spread
                # checkpoint on the leader: most of a rejoin's time otherwise.
                "basebackup": [{"checkpoint": "fast"}],
                "authentication": {
                    "superuser": {"username": "postgres", "password": self.passwords["postgres"]},
                    "replication": {"username": "replicator", "password": self.passwords["replicator"]},
                },
                "parameters": {"unix_socket_directories": str(node.directory), "logging_collector": "off"},
                "pg_hba": ["local all all trust",
                           "host replication replicator 127.0.0.1/32 scram-sha-256",
                           "host all all 127.0.0.1/32 scram-sha-256"],
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }

    def _bootstrap(self) -> None:
        """The package's owner (a non-superuser login with a password) and its database, on the leader."""
        with psycopg.connect(self.admin_url(self.leader()), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD {}").format(
                sql.Identifier(OWNER_ROLE), sql.Literal(self.passwords[OWNER_ROLE])))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(DATABASE_NAME), sql.Identifier(OWNER_ROLE)))

    def _stop_postmaster(self, node: Node) -> None:
        """A postmaster Patroni left behind (its Patroni was killed): stopped at once."""
        if node.postmaster_pid() is None or not node.datadir.exists():
            return
        subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(node.datadir), "-w", "-t", "20", "-m", "immediate",
                        "stop"], capture_output=True, check=False,
                       **processes.as_account(self._account, node.directory))
