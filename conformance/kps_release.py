"""Which kube-prometheus-stack release made a cluster's Prometheus resource: the names its monitors carry, read from
the resource's own labels and name (docs/real-stack.md#discovery: the platform check's required jobs)."""

from __future__ import annotations

from conformance.http import ServiceError
from conformance.prometheus_intent import GROUP, VERSION, read_intent
from conformance.scrape_jobs import ChartRelease, bring_up_release

CHART = "kube-prometheus-stack"


def cluster_chart(access, cluster) -> ChartRelease:
    """The release from the resource's labels (release, app.kubernetes.io/part-of: kube-prometheus-stack 88.5.3
    templates/_helpers.tpl kube-prometheus-stack.labels), its fullname from its name (<fullname>-prometheus, or the
    fullname itself with cleanPrometheusOperatorObjectNames), its namespace; the bring-up's where it cannot be read
    or is not the chart's (its `source` then says why)."""
    bring_up = bring_up_release()
    intent = read_intent(access, cluster)
    if isinstance(intent, str):
        return _because(bring_up, intent)
    try:
        kube = access.kube(cluster)
        obj = kube.call(f"read {intent.source}", kube.custom().get_namespaced_custom_object, GROUP, VERSION,
                        intent.namespace, "prometheuses", intent.name, ok=(403, 404))
    except ServiceError as e:
        return _because(bring_up, f"{intent.source} cannot be read: {e}")
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    release = labels.get("release") or labels.get("app.kubernetes.io/instance")
    if labels.get("app.kubernetes.io/part-of") != CHART or not release:
        return _because(bring_up, f"{intent.source} carries no {CHART} labels (app.kubernetes.io/part-of, release)")
    if (release, intent.namespace) == (bring_up.release, bring_up.namespace):
        return bring_up
    return ChartRelease(release, intent.name.removesuffix("-prometheus"), intent.namespace,
                        f"{intent.source} (labels release={release}, app.kubernetes.io/part-of={CHART})")


def _because(chart: ChartRelease, why: str) -> ChartRelease:
    return ChartRelease(chart.release, chart.fullname, chart.namespace, f"{chart.source}; {why}")
