"""The database every DB-backed test runs against.

DATABASE_URL set: that server. Unset: a throwaway embedded cluster. Either way the tests create a
scratch database of their own, migrate it, and drop it at the end, so they never touch the data of
the database DATABASE_URL names. Under CI (CI=true) a skipped test is a failure. `outbox evidence`
sets OUTBOX_TEST_DATABASE_URL (its own migrated scratch database) and, on the embedded cluster,
OUTBOX_TEST_CLUSTER_DIR, so the proofs run on the database whose privileges it reads afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from runner.clusters import embedded as cluster_mod
from runner.clusters import scratch
from runner.clusters.scratch import Server
from tests.helpers.support import ProofRecord


@dataclass
class Database:
    server: Server
    name: str
    url: str  # the owner of the package objects


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield Server(url=url, cluster=None, where="DATABASE_URL")
        return
    attached = os.environ.get("OUTBOX_TEST_CLUSTER_DIR")
    if attached:  # the embedded cluster of an `outbox evidence` run: used here, stopped by that run
        embedded = cluster_mod.EmbeddedCluster.attach(Path(attached))
        yield Server(url=embedded.database_url, cluster=embedded, where="embedded cluster of outbox evidence")
        return
    with _own_embedded_cluster("no database: DATABASE_URL is unset and the embedded cluster cannot start") as own:
        yield own


@contextmanager
def _own_embedded_cluster(skip_reason: str) -> Iterator[Server]:
    """A throwaway embedded cluster for the length of the block; the test skips (a failure under
    CI) with `skip_reason` when it cannot start."""
    try:
        embedded = cluster_mod.EmbeddedCluster()
        embedded.__enter__()
    except cluster_mod.ClusterError as exc:
        pytest.skip(f"{skip_reason}: {exc}")
    try:
        yield Server(url=embedded.database_url, cluster=embedded, where="embedded cluster")
    finally:
        embedded.__exit__(None, None, None)


def create_migrated_database(server: Server, prefix: str = "outbox_test") -> Database:
    """A scratch database, migrated, its login a member of every runtime role (runner/clusters/scratch.py)."""
    name = scratch.create_database(server.url, prefix)
    url = server.database_url(name)
    scratch.prepare(url)
    return Database(server=server, name=name, url=url)


def drop_database(server: Server, name: str) -> None:
    scratch.drop_database(server.admin_url, name)


@pytest.fixture(scope="session")
def database(server: Server) -> Iterator[Database]:
    given = os.environ.get("OUTBOX_TEST_DATABASE_URL")
    if given:  # `outbox evidence` migrated it and reads its privileges after the proofs; it drops it
        yield Database(server=server, name=str(psycopg.conninfo.conninfo_to_dict(given)["dbname"]), url=given)
        return
    created = create_migrated_database(server)
    try:
        yield created
    finally:
        drop_database(server, created.name)


def truncate_package_tables(url: str) -> list[str]:
    """As the owner, the only role that may: a clean slate for the next proof. Returns the tables,
    read from the catalog (every table of the package but the migration ledger and the settings)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return scratch.empty_package_tables(conn)


@pytest.fixture
def clean_database(database: Database) -> Database:
    truncate_package_tables(database.url)
    return database


@pytest.fixture
def proof(request: pytest.FixtureRequest) -> Iterator[ProofRecord]:
    """A record of the proof's invariants, written to reports/proofs/ whatever the outcome."""
    record = ProofRecord(name=request.node.name.replace("/", "_"))
    yield record
    failed = any(getattr(request.node, f"rep_{when}", None) is not None and getattr(request.node, f"rep_{when}").failed
                 for when in ("setup", "call"))
    record.write("FAILED" if failed or not record.passed else "PASSED")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                               call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keeps each phase's report on the item; in CI turns a skip into a failure, because a proof
    that did not run proved nothing."""
    report = yield
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI (CI=true), which counts as a failure: {reason}"
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def crashable_server() -> Iterator[Server]:
    """An embedded cluster of the fault proofs' own, which they crash, restart and reconfigure
    (ALTER SYSTEM): never the shared one, and started even when DATABASE_URL is set."""
    with _own_embedded_cluster("the crash proofs need PostgreSQL's server binaries for a cluster of their own") as own:
        yield own


@pytest.fixture
def crash_database(crashable_server: Server) -> Iterator[Database]:
    """A migrated scratch database on the fault proofs' own cluster, dropped afterwards."""
    created = create_migrated_database(crashable_server, prefix="outbox_faults")
    try:
        yield created
    finally:
        drop_database(crashable_server, created.name)
