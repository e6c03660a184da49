"""The package's mutual exclusion cannot be taken from outside it (issue 25, item 2).

It was advisory-lock keys written in the source, and pg_advisory_lock is PUBLIC's: any login could
make retention skip (exit 0, nothing created), ensure_attempt_partitions() fail with 55P03, or the
conversion wait forever. It is now a row of payment_outbox_locks (tables/0017) that only the
owner can lock or lease: a login without privileges cannot lock it, holding the old keys stops nothing,
and a run that finds a package lock held names the holder and ends non-zero after its bound.
The months ahead are watched: outbox metrics exports ledger_partitions_ahead_seconds.
"""

from __future__ import annotations

import hashlib

import psycopg
import pytest
from psycopg import sql

from runner.client import Client, Role
from runner.operator import metrics
from runner.schema import ledger_conversion, lockwait, retention
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.partitions import backdated_item, dispatch_all, month_partition, partitions
from tests.helpers.support import ProofRecord, sqlstate_of

pytestmark = pytest.mark.proof

SHORT = lockwait.LockPolicy(timeout_seconds=0.2, retries=0, first_backoff_seconds=0.05)
OLD_KEYS = {
    "retention": int.from_bytes(hashlib.sha256(b"payment_outbox.retention").digest()[:8], "big", signed=True),
    "convert_ledger": int.from_bytes(hashlib.sha256(b"payment_outbox.convert_ledger").digest()[:8], "big",
                                     signed=True),
}
OUTSIDER = "outbox_i25_outsider"


def outsider_url(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as owner:  # setup: a login with no package role
        if owner.execute("SELECT FROM pg_roles WHERE rolname = %s", (OUTSIDER,)).fetchone() is None:
            owner.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(OUTSIDER)))
    return psycopg.conninfo.make_conninfo(url, user=OUTSIDER)


def test_no_login_outside_the_package_stops_maintenance(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    name = month_partition(url, 2020, 8)
    backdated_item(url, "pl-aug-done", "2020-08-10 12:00+00")
    dispatch_all(url)
    with psycopg.connect(outsider_url(url), autocommit=True) as outsider:
        refused = [sqlstate_of(lambda: outsider.execute(
            "SELECT FROM payment_outbox.payment_outbox_locks WHERE lock_name = 'retention' FOR UPDATE")),
            sqlstate_of(lambda: outsider.execute("SELECT payment_outbox._lock_package('retention')"))]
        proof.check("the outsider can neither lock the package's row nor call its helper", want=["42501", "42501"],
                    have=refused)
        for key in (*OLD_KEYS.values(), "hashtext('payment_outbox.ensure_attempt_partitions')"):
            outsider.execute(f"SELECT pg_advisory_lock({key})")
        with Client.connect(url, Role.OPERATOR, name="operator") as client:
            ensured = sqlstate_of(lambda: client.ensure_partitions("3 months"))
        lines: list[dict[str, object]] = []
        code = retention.run(url, retention.Options(window="30 days"), emit=lines.append, policy=SHORT)
        proof.check("with every old advisory key held by the outsider, partitions and retention run",
                    want=(None, 0, "retired"), have=(ensured, code, partitions(url)[name]))


def test_a_held_package_lock_is_named_and_ends_the_run(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    with psycopg.connect(url, autocommit=True) as holder, psycopg.connect(url) as ensuring:
        # The owner as runs of the jobs hold them: a transaction in ensure_attempt_partitions(),
        # the leases of a retention run and of a conversion.
        ensuring.execute("SELECT payment_outbox._lock_package('ensure_attempt_partitions')")
        holder.execute("SELECT payment_outbox._take_package_lease('retention')")
        holder.execute("SELECT payment_outbox._take_package_lease('convert_ledger')")
        pid = f"pid {holder.info.backend_pid}"
        ensuring_pid = f"pid {ensuring.info.backend_pid}"
        with Client.connect(url, Role.OPERATOR, name="operator") as client:
            client.conn.execute("SET lock_timeout = '200ms'")
            try:
                client.ensure_partitions("3 months")
                ensured: tuple[str | None, str] = (None, "")
            except psycopg.Error as exc:
                ensured = (exc.sqlstate, str(exc))
        proof.observe(ensure_error=ensured[1])
        proof.check("ensure_attempt_partitions() behind the holder: PO036 naming its pid",
                    want=("PO036", True), have=(ensured[0], ensuring_pid in ensured[1]))
        lines: list[dict[str, object]] = []
        try:
            retention.run(url, retention.Options(window="30 days"), emit=lines.append, policy=SHORT)
            blocked = ""
        except lockwait.GaveUp as exc:
            blocked = str(exc)
        proof.check("outbox retention behind the holder gives up (exit 3) naming its pid",
                    want=(True, ["retention_waiting", "retention_blocked"]),
                    have=(pid in blocked, [line["event"] for line in lines]))
        try:
            ledger_conversion.convert(url, say=lambda line: None, policy=SHORT)
            converted = ""
        except lockwait.GaveUp as exc:
            converted = str(exc)
        proof.check("the conversion behind the holder gives up (exit 3) naming its pid", want=True,
                    have=pid in converted)
    lines = []
    code = retention.run(url, retention.Options(window="30 days"), emit=lines.append, policy=SHORT)
    proof.check("the holder's session ended: its leases are free, the next run goes ahead", want=0, have=code)


def test_the_months_ahead_are_a_gauge(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    with Client.connect(url, Role.READONLY, name="metrics") as client:
        gauges = metrics.read_queue_gauges(client.conn, 60)
    proof.check("ledger_partitions_ahead_seconds is at least two months (the default three ahead)",
                want=True, have=gauges.ledger_partitions_ahead_seconds > 60 * 86400)
    registry = metrics.RepairMetrics()
    registry.record_gauges(gauges, 60)
    proof.check("it is exported", want=True,
                have="payment_outbox_ledger_partitions_ahead_seconds " in registry.exposition())
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
