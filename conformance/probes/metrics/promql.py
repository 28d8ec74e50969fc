"""PromQL helpers that encode where a cluster's series live on the primary."""

from __future__ import annotations

from conformance.core.topology import Cluster


def on_primary(cluster: Cluster, label: str = "cluster") -> str:
    """The matcher that selects cluster's series in the primary's TSDB.

    Remote series arrive through remote write carrying the remote's external label label=<name> (read from its
    Prometheus resource: conformance/probes/metrics/series_label.py); the primary's own series are stored without its external
    labels, so they have no such label at all (docs/real-stack.md#metrics).
    """
    return f'{label}=""' if cluster.is_primary else f'{label}="{cluster.name}"'
