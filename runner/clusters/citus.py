"""A throwaway Citus cluster: a coordinator and N workers on 127.0.0.1, removed at exit.

Each node is an embedded cluster (runner/cluster.py: initdb into a temporary directory, run as
an unprivileged user when we are root, removed at exit, after a failure or Ctrl-C) that also
listens on a free TCP port of 127.0.0.1 chosen at run time, loads Citus
(shared_preload_libraries) and trusts logins on loopback, so the coordinator and the delegated
calls reach the workers as the role that runs them. Citus itself comes from
runner/clusters/citus_build.py (built once from CITUS_SOURCE when the server lacks it).

    with CitusCluster(workers=2) as cluster:
        cluster.database_url            # the package owner on the coordinator
        cluster.worker_url(0, "postgres")
"""

from __future__ import annotations

import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import quote

import psycopg

from runner.clusters import citus_build, embedded

HOST = "127.0.0.1"
# Small enough that distributing every package table stays quick on two cores, large enough
# that each worker holds several shards (the buckets claims are routed to).
SHARD_COUNT = 8


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class CitusNode(embedded.EmbeddedCluster):
    """An embedded cluster on a TCP port of loopback, with Citus preloaded. Node-to-node
    connections go without TLS: loopback only, and the server, started from our environment,
    would otherwise look for a client certificate in our home directory."""

    port: int = 0

    def url(self, user: str = embedded.OWNER_ROLE, database: str = embedded.DATABASE_NAME) -> str:
        return f"postgresql://{quote(user)}@{HOST}:{self.port}/{quote(database)}"

    def start_server(self) -> None:
        if self.workdir is None:
            raise embedded.ClusterError("the node has no directory: it was stopped or never created")
        for attempt in range(5):
            if attempt or not self.port:
                self.port = free_port()
            options = (f"-c listen_addresses={HOST} -k {self.socket_dir} -p {self.port} "
                       f"-c shared_preload_libraries=citus -c max_connections=300 "
                       f"-c citus.shard_count={SHARD_COUNT} -c citus.node_conninfo=sslmode=disable")
            try:
                self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-t", "60",
                           "-l", str(self.workdir / "server.log"), "-o", options, "start"])
                return
            except embedded.ClusterError as exc:
                if "Address already in use" not in str(exc) or attempt == 4:
                    raise

    def _bootstrap(self) -> None:
        super()._bootstrap()
        with psycopg.connect(self.url(user=embedded.SUPERUSER), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS citus")


@dataclass
class CitusCluster:
    """A coordinator and `workers` workers; `with CitusCluster() as c:` starts and removes them."""

    workers: int = 2
    coordinator: CitusNode | None = None
    nodes: list[CitusNode] = field(default_factory=list)
    _old_sigterm: object = None

    @property
    def database_url(self) -> str:
        assert self.coordinator is not None
        return self.coordinator.url()

    def url(self, user: str = embedded.OWNER_ROLE, database: str = embedded.DATABASE_NAME) -> str:
        assert self.coordinator is not None
        return self.coordinator.url(user, database)

    @property
    def admin_url(self) -> str:
        return self.url(user=embedded.SUPERUSER)

    def worker_url(self, index: int, user: str = embedded.OWNER_ROLE) -> str:
        return self.nodes[index].url(user)

    def __enter__(self) -> CitusCluster:
        self._old_sigterm = signal.getsignal(signal.SIGTERM)
        if self._old_sigterm in (signal.SIG_DFL, None):
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
        try:
            citus_build.ensure()
        except citus_build.CitusBuildError as exc:
            raise embedded.ClusterError(f"Citus is not available: {exc}") from exc
        self.coordinator = CitusNode(data_checksums=False)
        self.coordinator.start()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("SELECT citus_set_coordinator_host(%s, %s)", (HOST, self.coordinator.port))
        for _ in range(self.workers):
            self.add_worker()

    def add_worker(self, activate: bool = True) -> CitusNode:
        """Start one more worker; with `activate`, add it to the cluster (citus_add_node)."""
        node = CitusNode(data_checksums=False)
        self.nodes.append(node)
        node.start()
        if activate:
            self.activate(node)
        return node

    def activate(self, node: CitusNode) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("SELECT citus_add_node(%s, %s)", (HOST, node.port))

    def stop(self) -> None:
        for node in [*self.nodes, self.coordinator]:
            if node is not None:
                node.stop()
        self.nodes = []
        self.coordinator = None

    def logs(self) -> dict[str, str]:
        named = {"coordinator": self.coordinator} | {f"worker{i}": n for i, n in enumerate(self.nodes)}
        return {name: node.server_log() for name, node in named.items() if node and node.workdir}

    def workdirs(self) -> list[Path]:
        return [n.workdir for n in [self.coordinator, *self.nodes] if n is not None and n.workdir]


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
