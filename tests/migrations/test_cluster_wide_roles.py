"""Runtime roles belong to the whole cluster (issue 12, finding 6).

A login granted outbox_executor for one database reaches the payloads of every database of the
cluster that has the package, unless CONNECT says otherwise. The proof shows the reach, then the
remedy the README gives a DBA: revoke CONNECT from PUBLIC on each database and grant it to the
logins meant for it. The privilege_matrix SQL proof checks that no runtime role holds a
privilege on any database, so the package itself never widens that reach.
"""

from __future__ import annotations

import os
import time

import psycopg
import pytest
from psycopg import sql

from runner.client import Client, Role
from runner.schema import migrate
from tests.conftest import Server, drop_database
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof


def test_a_runtime_role_reaches_every_database_unless_connect_is_restricted(server: Server,
                                                                             proof: ProofRecord) -> None:
    suffix = f"{os.getpid()}_{time.monotonic_ns() % 10**9}"
    login, other = f"outbox_worker_{suffix}", f"outbox_other_{suffix}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(other)))
    try:
        other_url = server.database_url(other)
        migrate.migrate(other_url, say=lambda line: None)  # creates the runtime roles if this is the first
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(login)))
            conn.execute(sql.SQL("GRANT outbox_executor TO {}").format(sql.Identifier(login)))
        as_login = psycopg.conninfo.make_conninfo(other_url, user=login)

        def claim_in_other_database() -> str | None:
            """None when the claim ran; else why not (a refused connection carries no SQLSTATE in
            libpq, so its message stands for it)."""
            try:
                with Client.connect(as_login, Role.EXECUTOR, name="cross-db-worker") as client:
                    client.claim("cross-db-worker", 10)
            except psycopg.OperationalError as exc:
                return "no CONNECT privilege" if "CONNECT privilege" in str(exc) else str(exc)
            return None

        proof.check("a login granted outbox_executor (for some database) claims in another one", want=None,
                    have=claim_in_other_database())
        with psycopg.connect(other_url, autocommit=True) as owner:  # the DBA's remedy, as the database's owner
            owner.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(other)))
        proof.check("with CONNECT revoked from PUBLIC it cannot connect", want="no CONNECT privilege",
                    have=claim_in_other_database())
        with psycopg.connect(other_url, autocommit=True) as owner:
            owner.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(other),
                                                                              sql.Identifier(login)))
        proof.check("granted CONNECT by name, it can again", want=None, have=claim_in_other_database())
    finally:
        drop_database(server, other)
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))
