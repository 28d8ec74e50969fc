"""The files a FakeLoki keeps on its claim: flushed chunks and its write-ahead log, where its configuration puts them.

What survives a Loki pod follows from paths, as on the real stack: a directory under the claim's mount is on the
claim (kept for the next pod that mounts it), any other is on the container's own disk (gone with the pod). An
ingester holds lines in memory and in its WAL (grafana/loki v2.9.3 and v3.7.6 pkg/ingester/wal.go: enabled by
default, `ingester.wal-dir`) until it flushes them into chunks; a Loki that starts replays the WAL in its own
`ingester.wal.dir` (pkg/ingester/ingester.go: checkpoint and segments read from cfg.WAL.Dir).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

# (stream labels, timestamp ns, line, structured metadata): one entry as a chunk or a WAL record holds it.
Record = tuple[tuple[tuple[str, str], ...], int, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Layout:
    """Where a Loki pod mounts its claim and where its configuration puts chunks and the WAL."""

    mount: str
    chunks_dir: str
    wal_dir: str

    def on_claim(self, path: str) -> str | None:
        """The path relative to the claim's root; None when it is outside the mount (the container's disk)."""
        p, mount = PurePosixPath(path), PurePosixPath(self.mount)
        return str(p.relative_to(mount)) if p.is_relative_to(mount) else None


@dataclass
class Volume:
    """A claim's (or a container's) files: records by directory, relative to its root."""

    files: dict[str, list[Record]] = field(default_factory=dict)

    def append(self, directory: str, records: list[Record]) -> None:
        self.files.setdefault(directory, []).extend(records)

    def read(self, directory: str) -> list[Record]:
        return list(self.files.get(directory, []))


@dataclass
class Disks:
    """What one Loki pod writes to: the claim it mounts and its container's own disk."""

    claim: Volume
    layout: Layout
    container: Volume = field(default_factory=Volume)

    def where(self, path: str) -> tuple[Volume, str]:
        """The volume a configured directory is on, and the directory there."""
        on_claim = self.layout.on_claim(path)
        return (self.claim, on_claim) if on_claim is not None else (self.container, path)

    def append(self, path: str, records: list[Record]) -> None:
        volume, directory = self.where(path)
        volume.append(directory, records)

    def read(self, path: str) -> list[Record]:
        volume, directory = self.where(path)
        return volume.read(directory)
