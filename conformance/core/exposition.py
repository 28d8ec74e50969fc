"""Read Prometheus exposition text (a server's own /metrics) into samples."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_samples(text: str) -> list[Sample]:
    """Every sample in the text (histogram buckets and counters' _total names as exposed)."""
    return [
        Sample(s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def sum_by(samples: list[Sample], name: str, label: str) -> dict[str, float]:
    """Sum of one metric's samples grouped by one label's value."""
    totals: dict[str, float] = {}
    for s in samples:
        if s.name == name:
            key = s.labels.get(label, "")
            totals[key] = totals.get(key, 0.0) + s.value
    return totals
