"""The client's facts agree with the package's: its roles are the roles file's, and every call
has its named query."""

from __future__ import annotations

from runner import client, package


def test_the_client_roles_are_the_roles_the_package_creates() -> None:
    assert sorted(role.value for role in client.Role) == sorted(package.runtime_roles())


def test_every_named_query_is_loaded_with_its_statement() -> None:
    queries = client.queries()
    assert sorted(queries) == sorted(["enqueue", "claim", "complete", "repair", "list_stuck", "check_invariants",
                                      "queue_metrics", "in_flight", "ledger"])
    assert all(text.splitlines()[0].startswith("-- ") and "SELECT" in text for text in queries.values())
