"""The files a FakeLoki keeps on its claim: flushed chunks and its write-ahead log, where its configuration puts them.

What survives a Loki pod follows from paths, as on the real stack: a directory under the claim's mount is on the
claim (kept for the next pod that mounts it), any other is on the container's own disk (gone with the pod). An
ingester holds lines in memory and in its WAL (grafana/loki v2.9.3 and v3.7.6 pkg/ingester/wal.go: enabled by
default, `ingester.wal-dir`) until it flushes them into chunks; a Loki that starts replays the WAL in its own
`ingester.wal.dir` (pkg/ingester/ingester.go: checkpoint and segments read from cfg.WAL.Dir). A flushed chunk is
found through the index of the schema period its time falls in (pkg/storage/config/schema_config.go: `from` is a
day, 00:00 UTC): a Loki whose periods name another index for that day does not find it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import PurePosixPath

# (stream labels, timestamp ns, line, structured metadata): one entry as a chunk or a WAL record holds it.
Record = tuple[tuple[tuple[str, str], ...], int, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Layout:
    """Where a Loki pod mounts its claim and where its configuration puts chunks and the WAL."""

    mount: str
    chunks_dir: str
    wal_dir: str
    periods: tuple[tuple[str, str], ...]  # schema_config: (from day, index store), oldest first

    def store_at(self, ts: int) -> str:
        """The index store of the period an entry's time falls in."""
        day = datetime.fromtimestamp(ts / 1e9, tz=timezone.utc).date()
        return [store for start, store in self.periods if date.fromisoformat(start) <= day][-1]

    def index(self, store: str) -> str:
        """The directory of the chunks a period's index points at (each store's own index under index/)."""
        return f"{self.chunks_dir}/index/{store}"

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

    def replace(self, directory: str, records: list[Record]) -> None:
        self.files[directory] = list(records)


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

    def replace(self, path: str, records: list[Record]) -> None:
        volume, directory = self.where(path)
        volume.replace(directory, records)
