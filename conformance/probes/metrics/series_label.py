"""The external label that tells a cluster's series apart on the primary, read from the cluster's Prometheus resource."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.probes.metrics.prometheus_intent import PrometheusIntent, cluster_label, read_intent

DEFAULT = "cluster"  # the label the bring-up sets (stack/values externalLabels) and the suite's fallback


@dataclass(frozen=True)
class SeriesLabel:
    """The label's name and where it was read (or why the suite's default stands)."""

    name: str
    where: str

    def __str__(self) -> str:
        return f"{self.name} ({self.where})"


def series_label(access, cluster) -> SeriesLabel:
    """The external label of cluster's Prometheus resource whose value is the cluster's name; the suite's default
    `cluster` where the resource cannot be read or carries no such label (the metrics checks judge that)."""
    intent = read_intent(access, cluster) if access is not None else "no API access was given"
    if not isinstance(intent, PrometheusIntent):
        return SeriesLabel(DEFAULT, f"the suite's default: {intent}")
    try:
        name, where = cluster_label(intent, cluster.name, DEFAULT)
    except ValueError as e:
        return SeriesLabel(DEFAULT, f"the suite's default: {e}")
    return SeriesLabel(name, where)
