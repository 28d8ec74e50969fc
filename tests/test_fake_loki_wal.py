"""FakeLoki's claim and write-ahead log: what a replaced Loki pod finds follows from its mount and directories."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from conformance.provision import logs
from tests.fakes.loki import LOKI_CHART_LAYOUT, LOKI_STACK_LAYOUT, FakeLoki
from tests.fakes.loki_volume import Layout, Volume
from tests.test_fakes_services import now_ns, push, query_range, stream

LABELS = {"cluster": "oke", "job": "app"}
OLD_V11 = (logs.OLD_PERIOD["from"], "boltdb-shipper")
# The Loki chart's Loki with loki-moved.yaml: the old chunks and the old WAL through its /var/loki mount.
MOVED = Layout(logs.NEW_MOUNT, logs.on_new_mount(logs.OLD_CHUNKS_DIR), logs.on_new_mount(logs.OLD_WAL_DIR), (OLD_V11,))


@pytest.fixture
def loki() -> Iterator[FakeLoki]:
    with FakeLoki() as server:
        yield server  # type: ignore[misc]


def write(loki: FakeLoki, first: int, count: int) -> datetime:
    """Lines 1 ns apart, pushed; the time of the first."""
    t = now_ns()
    assert push(loki, [stream(LABELS, *((t + n, f"line {n}") for n in range(first, first + count)))]).status_code == 204
    return datetime.fromtimestamp(t / 1e9, tz=timezone.utc)


def with_v13(layout: Layout, first_day: str) -> Layout:
    return dataclasses.replace(layout, periods=(OLD_V11, (first_day, "tsdb")))


def lines(loki: FakeLoki) -> list[str]:
    body = query_range(loki, '{cluster="oke"}', limit=1000).json()
    return sorted(v[1] for s in body["data"]["result"] for v in s["values"])


def test_a_path_is_on_the_claim_only_under_its_mount():
    assert LOKI_STACK_LAYOUT.on_claim("/data/loki/wal") == "loki/wal"
    assert MOVED.on_claim("/var/loki/loki/wal") == "loki/wal"  # the same directory of the claim
    assert LOKI_CHART_LAYOUT.on_claim("/var/loki/wal") == "wal"  # another one
    assert LOKI_STACK_LAYOUT.on_claim("/var/loki/wal") is None  # the container's own disk


@pytest.mark.parametrize("killed,layout,found", [
    (False, MOVED, 31),             # flushed on shutdown, the WAL replayed too: each line once
    (True, MOVED, 31),              # killed: the WAL held the 16 unflushed lines, replayed
    (True, LOKI_CHART_LAYOUT, 0),   # the chart's own paths: neither the old chunks nor the old WAL
    (True, dataclasses.replace(MOVED, wal_dir=logs.NEW_DEFAULT_WAL_DIR), 15),  # chunks only
])
def test_a_replaced_pod_finds_what_its_paths_reach(loki, killed, layout, found):
    t = write(loki, 0, 15)
    assert loki.flush() == 15
    write(loki, 15, 16)
    if layout.periods == (OLD_V11,):  # the move's paths: v13 from the day after the lines'
        layout = with_v13(layout, logs.tsdb_from(t))
    loki.replace_pod("3.7.6", layout, killed=killed)
    assert len(lines(loki)) == len(set(lines(loki))) == found


def test_a_wal_outside_the_mount_is_gone_with_the_pod(loki):
    loki.replace_pod("2.9.3", Layout("/data", "/data/loki/chunks", "/wal", (OLD_V11,)))  # a WAL on the container's disk
    write(loki, 0, 5)
    loki.replace_pod("2.9.3", loki.disks.layout, killed=True)
    assert lines(loki) == []


def test_a_claim_of_its_own_starts_empty(loki):
    write(loki, 0, 5)
    loki.replace_pod("3.7.6", LOKI_CHART_LAYOUT, claim=Volume())
    assert lines(loki) == [] and loki.version == "3.7.6"


@pytest.mark.parametrize("starts,found", [
    ("tomorrow", 31),  # the lines' day stays behind the v11 index that has its chunks
    ("today", 16),     # v13's tsdb index has none of that day's old chunks; the WAL's 16 are replayed
])
def test_old_chunks_are_found_only_through_the_index_that_has_them(loki, starts, found):
    t = write(loki, 0, 15)
    loki.flush()
    loki.checkpoint()  # the flushed 15 leave the WAL
    write(loki, 15, 16)
    loki.replace_pod("3.7.6", with_v13(MOVED, logs.tsdb_from(t) if starts == "tomorrow" else t.date().isoformat()))
    assert len(lines(loki)) == found
