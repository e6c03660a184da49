"""The database every DB-backed test runs against.

DATABASE_URL set: that server. Unset: a throwaway embedded cluster. Either way the tests create a
scratch database of their own, migrate it, and drop it at the end, so they never touch the data of
the database DATABASE_URL names. Under CI (CI=true) a skipped test is a failure. `outbox evidence`
sets OUTBOX_TEST_DATABASE_URL (its own migrated scratch database) and, on the embedded cluster,
OUTBOX_TEST_CLUSTER_DIR, so the proofs run on the database whose privileges it reads afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from runner import cluster as cluster_mod
from runner import migrate
from tests.helpers.support import RUNTIME_ROLES, ProofRecord, database_url_for

PACKAGE_TABLES = (
    "payment_outbox.payment_outbox_pending",
    "payment_outbox.payment_outbox_attempts",
    "payment_outbox.participant_outbox_sequences",
    "payment_outbox.payment_outbox_idempotency_keys",
)


@dataclass
class Server:
    """A PostgreSQL server the tests may create databases on."""

    url: str  # a login that owns the scratch databases (CREATEDB)
    cluster: cluster_mod.EmbeddedCluster | None

    @property
    def admin_url(self) -> str:
        """A superuser connection, for faults (pg_terminate_backend) on the embedded cluster."""
        return self.cluster.admin_url if self.cluster else self.url


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
        yield Server(url=url, cluster=None)
        return
    attached = os.environ.get("OUTBOX_TEST_CLUSTER_DIR")
    if attached:  # the embedded cluster of an `outbox evidence` run: used here, stopped by that run
        embedded = cluster_mod.EmbeddedCluster.attach(Path(attached))
        yield Server(url=embedded.database_url, cluster=embedded)
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
        yield Server(url=embedded.database_url, cluster=embedded)
    finally:
        embedded.__exit__(None, None, None)


def create_migrated_database(server: Server, prefix: str = "outbox_test") -> Database:
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url_for(server.url, name)
    migrate.migrate(url, say=lambda line: None)
    with psycopg.connect(url, autocommit=True) as conn:
        # The tests act as each runtime role through SET ROLE, which needs membership.
        for role in RUNTIME_ROLES:
            conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))
    return Database(server=server, name=name, url=url)


def drop_database(server: Server, name: str) -> None:
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def database(server: Server) -> Iterator[Database]:
    given = os.environ.get("OUTBOX_TEST_DATABASE_URL")
    if given:  # `outbox evidence` migrated it and reads its privileges after the proofs; it drops it
        yield Database(server=server, name=psycopg.conninfo.conninfo_to_dict(given)["dbname"], url=given)
        return
    created = create_migrated_database(server)
    try:
        yield created
    finally:
        drop_database(server, created.name)


def truncate_package_tables(url: str) -> None:
    """As the owner, the only role that may: a clean slate for the next proof."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(PACKAGE_TABLES)}")


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
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
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
