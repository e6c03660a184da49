"""The client's facts agree with the package's: its roles are the roles file's, every call has
its named query."""

from __future__ import annotations

from runner import client
from runner.schema import package


def test_the_client_roles_are_the_roles_the_package_creates() -> None:
    assert sorted(role.value for role in client.Role) == sorted(package.runtime_roles())


def test_every_named_query_is_loaded_with_its_statement() -> None:
    queries = client.queries()
    assert sorted(queries) == sorted(["enqueue", "enqueue_batch", "claim", "complete", "complete_batch", "repair",
                                      "list_stuck", "check_invariants", "queue_metrics", "in_flight", "ledger",
                                      "item_history", "item_history_by_key", "key_conflicts", "set_settings",
                                      "settings_history", "complete_without_worker", "ensure_partitions",
                                      "retention_plan", "begin_retirement", "retire_partition",
                                      "attempt_partitions", "wakeup_channel", "quarantine_list",
                                      "quarantine_release", "quarantine_fail", "pause_rail", "resume_rail",
                                      "paused_rails", "rail_history", "buckets", "claim_bucket",
                                      "complete_participant", "repair_bucket", "check_bucket_invariants"])
    assert all(text.splitlines()[0].startswith("-- ") and "SELECT" in text for text in queries.values())
