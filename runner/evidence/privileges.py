"""The privilege matrix and the roles, read from the catalog, and the differences between two reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runner import db


@dataclass(frozen=True)
class Snapshot:
    """One read of the catalog: privileges of this database, roles of the whole cluster."""

    label: str
    privileges: list[tuple[str, str, str]]  # grantee, object, privilege
    roles: list[tuple[str, str, str]]  # role, attributes, member_of


def snapshot(url: str, label: str) -> Snapshot:
    with db.connection(url, application_name=f"outbox evidence {label}", autocommit=True) as conn:
        privileges = [tuple(row) for row in conn.execute(db.named_sql("privilege_snapshot"))]
        roles = [tuple(row) for row in conn.execute(db.named_sql("role_snapshot"))]
    return Snapshot(label=label, privileges=privileges, roles=roles)


def privileges_tsv(snap: Snapshot) -> str:
    return _tsv(("grantee", "object", "privilege"), snap.privileges)


def roles_tsv(snap: Snapshot) -> str:
    return _tsv(("role", "attributes", "member_of"), snap.roles)


def _tsv(header: tuple[str, ...], rows: list[tuple[str, str, str]]) -> str:
    return "".join("\t".join(row) + "\n" for row in [header, *rows])


def diff(before: Sequence[tuple[str, ...]], after: Sequence[tuple[str, ...]]) -> list[str]:
    """Lines '- row' (gone) and '+ row' (new), sorted by row; empty when nothing changed."""
    gone = [("-", row) for row in set(before) - set(after)]
    new = [("+", row) for row in set(after) - set(before)]
    return [f"{sign} {' | '.join(row)}" for sign, row in sorted(gone + new, key=lambda item: (item[1], item[0]))]
