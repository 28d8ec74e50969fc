"""Which monitor scrapes the mesh on a cluster: the bring-up's own (stack/manifests), else the one Istio's sample
renders or any scraping the same endpoint, in any namespace (docs/real-stack.md#discovery: mesh monitors)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from conformance.core.discovery import Ambiguous
from conformance.core.http import ServiceError
from conformance.core.manifests import MANIFESTS, load
from conformance.core.outcomes import Unobservable
from conformance.probes.metrics.prometheus_intent import GROUP, VERSION, monitor_selection, read_intent
from conformance.probes.platform.scrape_jobs import PROJECT_MONITORS, RequiredJob

POOL_KIND = {"PodMonitor": "podMonitor", "ServiceMonitor": "serviceMonitor"}


@dataclass(frozen=True)
class MeshMonitor:
    """A PodMonitor or ServiceMonitor found on a cluster, and how ('bring-up name', the rule that matched)."""

    kind: str
    namespace: str
    name: str
    how: str

    @property
    def pool(self) -> str:
        """The scrape pool the operator renders for its first endpoint: '<kind>/<namespace>/<name>/0'."""
        return f"{POOL_KIND[self.kind]}/{self.namespace}/{self.name}/0"

    def __str__(self) -> str:
        """How messages name the monitor: `<kind> <namespace>/<name>`."""
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class MonitorRule:
    """How a mesh monitor is recognised: the bring-up's manifest, the label Istio's sample puts on it, or its shape."""

    title: str
    plural: str
    manifest: Path
    label: tuple[str, str]
    shape: Callable[[dict], bool]
    looks_for: str
    scrapes: Callable[[dict], bool]  # an active target's shape: what this monitor's pool would scrape
    scraping: str  # that shape, said

    def bring_up(self, how: str) -> MeshMonitor:
        doc = load(self.manifest)
        return MeshMonitor(doc["kind"], doc["metadata"]["namespace"], doc["metadata"]["name"], how)

    def matches(self, obj: dict) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return labels.get(self.label[0]) == self.label[1] or self.shape(obj.get("spec") or {})


# istio/istio 1.29.6 samples/addons/extras/prometheus-operator.yaml: PodMonitor envoy-stats-monitor (label
# monitoring: istio-proxies, podMetricsEndpoints path /stats/prometheus) and ServiceMonitor istio-component-monitor
# (label monitoring: istio-components, endpoints port http-monitoring), both in istio-system, labelled release: istio.
# Without a monitor, a job of the user's own may scrape the same endpoints: Istio's prometheus.io annotations put
# injected pods' merged metrics at :15020/stats/prometheus (injection-template.yaml, enablePrometheusMerge) and
# istiod's at :15014/metrics (istio-discovery templates/deployment.yaml).
ENVOY = MonitorRule(
    "Envoy PodMonitor", "podmonitors", MANIFESTS / "envoy-podmonitor.yaml", ("monitoring", "istio-proxies"),
    lambda spec: any(e.get("path") == "/stats/prometheus" for e in spec.get("podMetricsEndpoints") or []),
    "PodMonitor labelled monitoring=istio-proxies (Istio's sample) or scraping path /stats/prometheus",
    lambda target: urlsplit(target.get("scrapeUrl", "")).path == "/stats/prometheus", "path /stats/prometheus")
ISTIOD = MonitorRule(
    "istiod ServiceMonitor", "servicemonitors", MANIFESTS / "istiod-servicemonitor.yaml", ("monitoring", "istio-components"),
    lambda spec: any(e.get("port") == "http-monitoring" for e in spec.get("endpoints") or []),
    "ServiceMonitor labelled monitoring=istio-components (Istio's sample) or scraping port http-monitoring",
    lambda target: (urlsplit(target.get("scrapeUrl", "")).port == 15014
                    or (target.get("discoveredLabels") or {}).get("__meta_kubernetes_pod_label_app") == "istiod"),
    "port 15014 (http-monitoring) or an app=istiod pod")


def mesh_monitor(access, cluster, rule: MonitorRule) -> MeshMonitor:
    """The cluster's monitor for `rule`; the bring-up's where the cluster cannot be read or has none (its `how` then
    says what was looked for, and the pool check names it). Two candidates the Prometheus both selects: Ambiguous."""
    try:
        kube = access.kube(cluster)
        listed = kube.call(f"list {rule.plural} on {cluster.name}", kube.custom().list_cluster_custom_object,
                           GROUP, VERSION, rule.plural, ok=(403, 404))
    except (Unobservable, ServiceError) as e:
        return rule.bring_up(f"bring-up name; no {rule.looks_for} could be looked for: {e}")
    if listed is None:
        return rule.bring_up(f"bring-up name; no {rule.looks_for} could be looked for: {rule.plural} cannot be listed")
    items = listed.get("items") or []
    own = rule.bring_up("bring-up name")
    if any((o["metadata"]["namespace"], o["metadata"]["name"]) == (own.namespace, own.name) for o in items):
        return own
    found = [MeshMonitor(o.get("kind") or own.kind, o["metadata"]["namespace"], o["metadata"]["name"],
                         f"{rule.label[0]}={rule.label[1]}" if rule.matches({"metadata": o["metadata"]}) else "its endpoint")
             for o in items if rule.matches(o)]
    if not found:
        return rule.bring_up(f"bring-up name; not found: no {own} and no {rule.looks_for} in any namespace")
    if len(found) > 1:
        found = _selected(access, cluster, found) or found
    if len(found) == 1:
        return found[0]
    raise Ambiguous(f"{cluster.name} {rule.title}: {len(found)} candidates in any namespace: "
                    f"{', '.join(f'{m} ({m.how})' for m in found)}; the check cannot tell which scrapes the "
                    f"mesh: leave one selected by the cluster's Prometheus resource")


def _selected(access, cluster, found: list[MeshMonitor]) -> list[MeshMonitor]:
    """The candidates the cluster's Prometheus resource selects (none when it cannot be read)."""
    intent = read_intent(access, cluster)
    if isinstance(intent, str):
        return []
    kube = access.kube(cluster)
    return [m for m in found if monitor_selection(kube, intent, m.kind, m.namespace, m.name).selected]


RULES_BY_MANIFEST = {"envoy-podmonitor.yaml": ENVOY, "istiod-servicemonitor.yaml": ISTIOD}


def role_rules(role: str) -> list[MonitorRule]:
    """The mesh monitors a cluster of `role` must have (the bring-up applies PROJECT_MONITORS there)."""
    return [RULES_BY_MANIFEST[name] for name in PROJECT_MONITORS[role]]


def required_job(monitor: MeshMonitor) -> RequiredJob:
    """The platform check's required job of a mesh monitor: its pool, its job as scrape_jobs.project_job names it."""
    job = f"{monitor.namespace}/{monitor.name}" if monitor.kind == "PodMonitor" else monitor.name
    source = "stack/manifests" if monitor.how == "bring-up name" else f"{monitor} ({monitor.how})"
    return RequiredJob(job, monitor.pool.removesuffix("/0"), source)
