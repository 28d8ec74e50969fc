"""What the Loki checks read of the store besides the canary: its discarded-sample counters by reason, and the
streams it has of a cluster lately (for a timeout's headline), the values of its cluster label."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.core.eventually import NotYet
from conformance.core.exposition import parse_samples, sum_by
from conformance.core.http import APIError

LOOKBACK = 300  # seconds of Loki searched around the canary


@dataclass(frozen=True)
class Discards:
    """Loki's discarded-sample counters by reason, and when they were read (time.monotonic())."""

    by_reason: dict[str, float]
    at: float


def discards(loki) -> dict[str, float] | None:
    """Loki's discarded-sample counters by reason, from its /metrics; None where it refuses or has none."""
    try:
        text = loki.metrics()
    except APIError as e:
        if e.status in (401, 403, 404):
            return None
        raise
    return sum_by(parse_samples(text), "loki_discarded_samples_total", "reason")


def streams_summary(loki, cluster_name: str, now: float) -> str:
    """What Loki has for cluster=<name> recently, for the timeout's headline."""
    streams = loki.streams(f'{{cluster="{cluster_name}"}}', start=now - LOOKBACK, end=now, limit=50)
    if not streams:
        return f"Loki has no stream with cluster={cluster_name} in the last {LOOKBACK // 60} min"
    newest = max(int(v[0]) for s in streams for v in s["values"]) / 1e9
    return f"Loki has {len(streams)} streams with cluster={cluster_name}; the newest entry is {now - newest:.0f} s old"


def discards_grown(loki, before: Discards | None) -> str:
    """Loki's discard reasons that grew since the logs checks began, e.g. 'rate_limited: 3'."""
    if before is None:
        return ""
    was, now = before.by_reason, discards(loki) or {}
    return ", ".join(f"{r}: {n - was.get(r, 0.0):.0f}" for r, n in sorted(now.items()) if n > was.get(r, 0.0))


def cluster_values(loki, expected: set[str]) -> set[str]:
    """The values of Loki's `cluster` label; NotYet until they include every one expected."""
    values = set(loki.label_values("cluster"))
    if not expected <= values:
        raise NotYet(f"cluster values {sorted(values)}")
    return values
