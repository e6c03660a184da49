"""The HA proofs' cluster: one per session, started and migrated once (starting Patroni, etcd and
two servers is most of a proof's time on a small machine). Each proof gets it healthy, in the
replication mode it asks for, with an empty migrated database: the node a previous proof killed is
cloned again as a replica of the new leader (HACluster.rejoin), Patroni's synchronous mode is set
through its REST API, and the database is recreated from a template. Patroni, etcd or
PostgreSQL's binaries missing: the proofs skip, which CI (CI=true) counts as a failure
(tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner.clusters import scratch
from runner.clusters.embedded import ClusterError
from runner.clusters.ha import HACluster


@pytest.fixture(scope="session")
def ha_cluster() -> Iterator[HACluster]:
    try:
        cluster = HACluster(synchronous=True)
        cluster.__enter__()
    except ClusterError as exc:
        pytest.skip(f"the HA cluster cannot start: {exc}")
    try:
        scratch.prepare(cluster.url)
        yield cluster
    finally:
        cluster.stop()


def ready(cluster: HACluster, synchronous: bool) -> HACluster:
    """Both nodes back, the mode asked for, an empty migrated database."""
    cluster.rejoin()
    cluster.set_synchronous(synchronous)
    cluster.reset_database()
    return cluster


@pytest.fixture
def ha(ha_cluster: HACluster) -> HACluster:
    """Synchronous mode on: a commit is acknowledged once the synchronous standby has it."""
    return ready(ha_cluster, synchronous=True)


@pytest.fixture
def ha_async(ha_cluster: HACluster) -> HACluster:
    """Synchronous mode off: what a failover loses there is what the asynchronous proof measures."""
    return ready(ha_cluster, synchronous=False)
