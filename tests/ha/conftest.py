"""The HA proofs' cluster: a fresh one per proof (each proof kills its leader), migrated through
the multi-host URL. Patroni, etcd or PostgreSQL's binaries missing: the proof skips, which CI
(CI=true) counts as a failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner.clusters import scratch
from runner.clusters.embedded import ClusterError
from runner.clusters.ha import HACluster


def start_ha(synchronous: bool = True) -> HACluster:
    try:
        ha = HACluster(synchronous=synchronous)
        ha.__enter__()
    except ClusterError as exc:
        pytest.skip(f"the HA cluster cannot start: {exc}")
    try:
        scratch.prepare(ha.url)
    except BaseException:
        ha.stop()
        raise
    return ha


@pytest.fixture
def ha() -> Iterator[HACluster]:
    """Synchronous mode on: a commit is acknowledged once the synchronous standby has it."""
    cluster = start_ha(synchronous=True)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def ha_async() -> Iterator[HACluster]:
    """Synchronous mode off: what a failover loses there is what the asynchronous proof measures."""
    cluster = start_ha(synchronous=False)
    try:
        yield cluster
    finally:
        cluster.stop()
