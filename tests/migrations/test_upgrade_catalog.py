"""Upgrade equals fresh install: for every prefix of sql/tables/ that was a release point, and for
the current package, a database migrated release point by release point has exactly the catalog
of a fresh install (tests/helpers/catalog.py: relations, columns, constraints, indexes, triggers,
functions, views, types, comments, owners, reloptions and privileges); so has a database that
jumps from any release point straight to the current package.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from runner.clusters import scratch
from runner.harness import releases
from runner.schema import migrate, package
from tests.conftest import Server
from tests.helpers import catalog
from tests.helpers.support import ProofRecord

pytestmark = pytest.mark.proof

POINTS = releases.points()
CURRENT = "current"


def root_of(name: str) -> Path:
    return package.sql_root() if name == CURRENT else releases.point(name).root


def catalog_after(server: Server, steps: list[str]) -> list[tuple[str, str, str]]:
    """The catalog of a new database migrated to each of `steps` in turn."""
    with scratch.database(server.url, "outbox_catalog", prepared=False, admin_url=server.admin_url) as url:
        for step in steps:
            migrate.migrate(url, say=lambda line: None, root=root_of(step))
        return catalog.snapshot(url)


@pytest.fixture(scope="module")
def fresh_current(server: Server) -> list[tuple[str, str, str]]:
    return catalog_after(server, [CURRENT])


@pytest.mark.parametrize("target", [p.name for p in POINTS[1:]] + [CURRENT])
def test_step_by_step_equals_fresh_install(target: str, server: Server, proof: ProofRecord) -> None:
    names = [p.name for p in POINTS]
    steps = names[:names.index(target) + 1] if target != CURRENT else [*names, CURRENT]
    stepped, fresh = catalog_after(server, steps), catalog_after(server, [target])
    proof.observe(steps=steps, objects=len(fresh))
    proof.check(f"migrated {' -> '.join(steps)}: the catalog of a fresh install of {target}",
                want=[], have=catalog.difference(stepped, fresh))


@pytest.mark.parametrize("point", POINTS, ids=lambda p: f"from-{p.name}")
def test_jump_to_current_equals_fresh_install(point: releases.ReleasePoint, server: Server,
                                              fresh_current: list[tuple[str, str, str]], proof: ProofRecord) -> None:
    jumped = catalog_after(server, [point.name, CURRENT])
    proof.check(f"migrated {point.name} -> current: the catalog of a fresh install", want=[],
                have=catalog.difference(jumped, fresh_current))


def test_the_catalog_sees_what_it_compares(server: Server, proof: ProofRecord) -> None:
    """A change of any compared kind shows up: the comparison is not blind."""
    with scratch.database(server.url, "outbox_catalog", prepared=False, admin_url=server.admin_url) as url:
        migrate.migrate(url, say=lambda line: None)
        before = catalog.snapshot(url)
        with psycopg.connect(url, autocommit=True) as owner:  # setup: one change of each kind, as the owner
            owner.execute("COMMENT ON COLUMN payment_outbox.payment_outbox_pending.worker_id IS 'changed'")
            # A table's: the partitioned ledger has no storage parameters of its own (issue 15).
            owner.execute("ALTER TABLE payment_outbox.payment_outbox_idempotency_keys SET (fillfactor = 90)")
            owner.execute("GRANT SELECT ON payment_outbox.payment_outbox_pending TO outbox_readonly")
            owner.execute("GRANT EXECUTE ON FUNCTION payment_outbox._max_attempt_count() TO outbox_readonly")
            owner.execute("ALTER TABLE payment_outbox.payment_outbox_idempotency_keys "
                          "DISABLE TRIGGER payment_outbox_idempotency_keys_append_only")
        changed = {name for _, name, _ in set(catalog.snapshot(url)) ^ set(before)}
    proof.check("a comment, a reloption, a table grant, a function grant and a trigger's state are seen",
                want={"payment_outbox_pending.worker_id", "payment_outbox_idempotency_keys", "payment_outbox_pending",
                      "payment_outbox._max_attempt_count()",
                      "payment_outbox_idempotency_keys.payment_outbox_idempotency_keys_append_only"},
                have=changed)


# One planted change per kind the package defines, each a change that would alter behaviour, with
# the objects it must show up as.
PLANTED = {
    "ALTER TABLE payment_outbox.payment_outbox_settings ALTER COLUMN max_attempt_count SET DEFAULT 21":
        {"payment_outbox_settings.max_attempt_count"},
    "ALTER TABLE payment_outbox.payment_outbox_rail_history ALTER COLUMN reason SET NOT NULL":
        {"payment_outbox_rail_history.reason"},
    "CREATE INDEX payment_outbox_rails_actor_idx ON payment_outbox.payment_outbox_rails (actor)":
        {"payment_outbox.payment_outbox_rails_actor_idx", "payment_outbox_rails_actor_idx",
         "payment_outbox_rails_actor_idx.actor"},
    "CREATE OR REPLACE FUNCTION payment_outbox.wakeup_channel() RETURNS text LANGUAGE sql IMMUTABLE "
    "SET search_path = pg_catalog, payment_outbox, pg_temp BEGIN ATOMIC SELECT 'another_channel'; END":
        {"payment_outbox.wakeup_channel()"},
    # An attribute option a migration could set is compared; the ones the server stamps are not.
    "ALTER TABLE payment_outbox.payment_outbox_pending ALTER COLUMN participant_id SET (n_distinct = 100)":
        {"payment_outbox_pending.participant_id"},
}


def test_the_comparison_catches_a_planted_difference(server: Server, proof: ProofRecord) -> None:
    """Two fresh installs compare equal whatever the server stamps on its own (Debian's 15.20 writes a
    different pg_attver into every column of each), and a planted default, NOT NULL, index,
    function body or column option in one of them is named, and nothing else."""
    first = catalog_after(server, [CURRENT])
    with scratch.database(server.url, "outbox_catalog", prepared=False, admin_url=server.admin_url) as url:
        migrate.migrate(url, say=lambda line: None)
        second = catalog.snapshot(url)
        with psycopg.connect(url, autocommit=True) as owner:  # setup: plant one change of each kind, as the owner
            stamped = owner.execute("SELECT count(*) FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid "
                                    "WHERE c.relnamespace = 'payment_outbox'::regnamespace "
                                    "AND a.attoptions::text LIKE '%%pg_attver%%'").fetchone()[0]
            for statement in PLANTED:
                owner.execute(statement)
            # PostgreSQL 18 keeps a NOT NULL as a constraint too (pg_constraint), named by the server.
            not_null = {"payment_outbox_rail_history.payment_outbox_rail_history_reason_not_null"} \
                if owner.info.server_version >= 180000 else set()
        planted = catalog.snapshot(url)
    proof.observe(columns_with_server_stamped_options=stamped)
    proof.check("two fresh installs: the same catalog", want=[], have=catalog.difference(second, first))
    proof.check("each planted change is named, and nothing else", want=set().union(*PLANTED.values(), not_null),
                have={name for _, name, _ in set(planted) ^ set(first)})
