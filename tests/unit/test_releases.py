"""Release points: each snapshot is what its commit held, and each is a state main can upgrade from."""

from __future__ import annotations

import pytest

from runner.harness import releases
from runner.schema import migrate, package

POINTS = releases.points()


def test_release_points_are_named_after_their_last_versioned_file() -> None:
    for point in POINTS:
        last = sorted(p.name for p in (point.root / "tables").glob("*.sql"))[-1]
        assert last.startswith(point.name + "_"), f"{point.name}: last versioned file is {last}"
    assert [p.name for p in POINTS] == sorted({p.name for p in POINTS}), "one point per name, oldest first"


@pytest.mark.parametrize("point", POINTS, ids=lambda p: p.name)
def test_snapshot_is_the_tree_the_manifest_records(point: releases.ReleasePoint) -> None:
    assert releases.verify(point) == []


@pytest.mark.parametrize("point", POINTS, ids=lambda p: p.name)
def test_manifest_records_the_commits_trees(point: releases.ReleasePoint) -> None:
    """Against git's own objects: needs the commit in the clone (CI clones main with its history)."""
    trees = releases.git_trees(point.commit)
    if trees is None:
        pytest.skip(f"{point.commit} is not in this clone")
    assert trees == point.trees


@pytest.mark.parametrize("point", POINTS, ids=lambda p: p.name)
def test_every_point_is_a_prefix_of_the_versioned_files(point: releases.ReleasePoint) -> None:
    """A database at the point upgrades: every file it applied is, byte for byte, the one sql/ keeps."""
    applied = {f.name: f.sha256 for f in migrate.package_files(point.root) if f.kind == "versioned"}
    current = {f.name: f.sha256 for f in migrate.package_files(package.sql_root()) if f.kind == "versioned"}
    assert {name: current.get(name) for name in applied} == applied
    assert sorted(current)[:len(applied)] == sorted(applied)


@pytest.mark.parametrize("state", releases.unreachable(), ids=lambda u: u.commit[:7])
def test_unreachable_states_hold_an_applied_file_main_changed(state: releases.Unreachable) -> None:
    """migrate refuses such a database (test_migrate.py: an edited applied file is refused)."""
    trees = releases.git_trees(state.commit)
    if trees is None:
        pytest.skip(f"{state.commit} is not in this clone")
    changed = []
    for path in sorted((package.sql_root() / "tables").glob("*.sql")):
        old = releases.file_at(state.commit, f"sql/tables/{path.name}")
        if old is not None and old != path.read_text():
            changed.append(path.name)
    assert changed, f"{state.commit}: every versioned file equals main's; the state is reachable"
