"""What the kubebench checks read through the clusters' services: the Pushgateway's groups, the totals on the primary,
the label telling clusters apart there, and why a cluster's totals are missing."""

from __future__ import annotations

from conformance.clients.prometheus import PrometheusClient
from conformance.clients.pushgateway import PushgatewayClient
from conformance.core.http import ServiceError
from conformance.probes.kubebench import pushes as kb
from conformance.probes.metrics.promql import on_primary
from conformance.probes.metrics.series_label import series_label


def totals_on_primary(prom: PrometheusClient, cluster, label: str) -> kb.Totals:
    """The cluster's totals in the primary's TSDB (a remote's carry <label>=<name>; the primary's own none, on_primary)."""
    return kb.totals_from({r: prom.query(f'{kb.metric(r)}{{{on_primary(cluster, label)}, job="{kb.push_job()}"}}')
                           for r in kb.CHECKED})


def cluster_label(access, cluster, record_property) -> str:
    """The label the primary tells cluster's series apart by, recorded with where it was read."""
    label = series_label(access, cluster)
    record_property("cluster_label", str(label))
    return label.name


def groups_or_none(access, cluster) -> list[dict[str, str]] | None:
    """The labels of each group the cluster's Pushgateway holds; None where it is not given or does not answer."""
    pg = access.client_or_none(cluster, "pushgateway", PushgatewayClient)
    if pg is None:
        return None
    try:
        return [g.labels for g in pg.groups()]
    except ServiceError:
        return None


def why_no_totals(access, cluster, primary, primary_prometheus, label: str) -> str:
    """Where the cluster's totals stop: on the primary, on the cluster's own Prometheus, in its Pushgateway."""
    match = f'{{__name__=~"kube_bench_total_.+", {on_primary(cluster, label)}}}'
    seen = [s["metric"] for s in primary_prometheus.query(match)]
    on_cluster = None
    if not cluster.is_primary:
        own = access.client_or_none(cluster, "prometheus", PrometheusClient)
        on_cluster = [s["metric"] for s in own.query('{__name__=~"kube_bench_total_.+"}')] if own else None
    return kb.why_no_totals(seen, on_cluster, groups_or_none(access, cluster), cluster.name, primary.name,
                            kb.push_job(), label)
