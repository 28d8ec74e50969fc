"""PromQL helpers that encode where a cluster's series live on the primary."""

from __future__ import annotations

from conformance.topology import Cluster


def on_primary(cluster: Cluster) -> str:
    """The matcher that selects cluster's series in the primary's TSDB.

    Remote series arrive through remote write carrying the remote's external label
    cluster=<name>; the primary's own series are stored without its external labels,
    so they have no cluster label at all (docs/real-stack.md#metrics).
    """
    return 'cluster=""' if cluster.is_primary else f'cluster="{cluster.name}"'
