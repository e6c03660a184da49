"""MANIFEST.sha256 of an evidence bundle: written in sha256sum's format, and checked."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

NAME = "MANIFEST.sha256"


@dataclass
class Verification:
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.malformed)

    def lines(self) -> list[str]:
        return ([f"changed: {name}" for name in self.changed] + [f"missing: {name}" for name in self.missing]
                + [f"extra: {name}" for name in self.extra]
                + [f"malformed manifest line: {line}" for line in self.malformed])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundle_files(bundle: Path) -> list[str]:
    """Every file of the bundle but the manifest, as relative POSIX paths, sorted."""
    return sorted(path.relative_to(bundle).as_posix() for path in bundle.rglob("*")
                  if path.is_file() and path.relative_to(bundle).as_posix() != NAME)


def write(bundle: Path) -> Path:
    """sha256sum's text format (`<hex>  <path>`), so `sha256sum -c MANIFEST.sha256` checks it too."""
    lines = [f"{sha256_of(bundle / name)}  {name}\n" for name in bundle_files(bundle)]
    target = bundle / NAME
    target.write_text("".join(lines))
    return target


def verify(bundle: Path) -> Verification:
    result = Verification()
    manifest = bundle / NAME
    if not manifest.is_file():
        result.missing.append(NAME)
        return result
    recorded: dict[str, str] = {}
    for line in manifest.read_text(errors="replace").splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name:
            result.malformed.append(line)
            continue
        recorded[name] = digest
    present = set(bundle_files(bundle))
    for name, digest in sorted(recorded.items()):
        if name not in present:
            result.missing.append(name)
        elif sha256_of(bundle / name) != digest:
            result.changed.append(name)
    result.extra = sorted(present - set(recorded))
    return result
