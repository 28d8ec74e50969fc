"""Which scrape jobs the stack must have up on each cluster, derived from the values the bring-up installs.

A monitor renders when every switch it depends on is true in the chart's defaults merged with the
cluster's values file; the project's own monitors are the stack/manifests files the bring-up applies
there. Sources (docs/real-stack.md): prometheus-community/helm-charts at kube-prometheus-stack-88.5.3,
charts/kube-prometheus-stack/values.yaml and templates/**/servicemonitor.yaml; the operator's job
naming in prometheus-operator pkg/prometheus/promcfg.go (v0.93).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from conformance.core import yamltext
from conformance.core.manifests import MANIFESTS, load
from conformance.core.stack import STACK_DIR, stack_namespace

VALUES = STACK_DIR / "values"
VERSIONS_FILE = STACK_DIR / "versions.yaml"
# The values file the bring-up installs kube-prometheus-stack with, by role (conformance/provision/phases/stack.py).
VALUES_FILE = {"primary": VALUES / "kube-prometheus-stack.yaml", "remote": VALUES / "kube-prometheus-stack-remote.yaml"}
# The stack/manifests monitors the bring-up applies, by role (conformance/provision/phases/stack.py).
PROJECT_MONITORS = {"primary": ("istiod-servicemonitor.yaml", "envoy-podmonitor.yaml"), "remote": ("envoy-podmonitor.yaml",)}

# kube-prometheus-stack 88.5.3 values.yaml: the defaults of the switches that decide which monitors render.
CHART_DEFAULTS: dict[str, Any] = {
    "kubernetesServiceMonitors": {"enabled": True},
    "kubeApiServer": {"enabled": True, "serviceMonitor": {"enabled": True}},
    "kubelet": {"enabled": True, "serviceMonitor": {"enabled": True}},
    "kubeControllerManager": {"enabled": True, "serviceMonitor": {"enabled": True}},
    "coreDns": {"enabled": True, "serviceMonitor": {"enabled": True}},
    "kubeDns": {"enabled": False},
    "kubeEtcd": {"enabled": True, "serviceMonitor": {"enabled": True}},
    "kubeScheduler": {"enabled": True, "serviceMonitor": {"enabled": True}},
    "kubeProxy": {"enabled": True, "serviceMonitor": {"enabled": True}},
    "kubeStateMetrics": {"enabled": True},
    "kube-state-metrics": {"prometheus": {"monitor": {"enabled": True}}},
    "nodeExporter": {"enabled": True},
    "prometheus-node-exporter": {"prometheus": {"monitor": {"enabled": True}}},
    "prometheusOperator": {"enabled": True, "serviceMonitor": {"selfMonitor": True}},
    "prometheus": {"enabled": True, "serviceMonitor": {"selfMonitor": True}},
    "alertmanager": {"enabled": True, "serviceMonitor": {"selfMonitor": True}},
    "grafana": {"enabled": True, "serviceMonitor": {"enabled": True}},
}


@dataclass(frozen=True)
class ChartMonitor:
    """A ServiceMonitor of the chart: its name after the release, the job its targets get, its switches."""

    name: str  # {fullname}: the chart's fullname (templates/_helpers.tpl); {release}: the release (a subchart's prefix)
    job: str
    switches: tuple[str, ...]


# Job names: the operator sets job to the Service's name, then to the value of the Service label named by
# spec.jobLabel when that label exists (promcfg.go). The chart's exporter Services carry `jobLabel: <job>`.
CHART_MONITORS = (
    ChartMonitor("{fullname}-apiserver", "apiserver",  # jobLabel component; Service default/kubernetes has component=apiserver
                 ("kubernetesServiceMonitors.enabled", "kubeApiServer.enabled", "kubeApiServer.serviceMonitor.enabled")),
    ChartMonitor("{fullname}-kubelet", "kubelet",  # jobLabel k8s-app; the operator's kubelet Service has k8s-app=kubelet
                 ("kubernetesServiceMonitors.enabled", "kubelet.enabled", "kubelet.serviceMonitor.enabled")),
    ChartMonitor("{fullname}-coredns", "coredns",
                 ("kubernetesServiceMonitors.enabled", "coreDns.enabled", "coreDns.serviceMonitor.enabled")),
    ChartMonitor("{fullname}-kube-dns", "kube-dns", ("kubernetesServiceMonitors.enabled", "kubeDns.enabled")),
    ChartMonitor("{fullname}-kube-controller-manager", "kube-controller-manager",
                 ("kubernetesServiceMonitors.enabled", "kubeControllerManager.enabled",
                  "kubeControllerManager.serviceMonitor.enabled")),
    ChartMonitor("{fullname}-kube-scheduler", "kube-scheduler",
                 ("kubernetesServiceMonitors.enabled", "kubeScheduler.enabled", "kubeScheduler.serviceMonitor.enabled")),
    ChartMonitor("{fullname}-kube-etcd", "kube-etcd",
                 ("kubernetesServiceMonitors.enabled", "kubeEtcd.enabled", "kubeEtcd.serviceMonitor.enabled")),
    ChartMonitor("{fullname}-kube-proxy", "kube-proxy",
                 ("kubernetesServiceMonitors.enabled", "kubeProxy.enabled", "kubeProxy.serviceMonitor.enabled")),
    # Subcharts: jobLabel app.kubernetes.io/name (kube-state-metrics 8.4.0) and jobLabel (node-exporter 4.56.1,
    # whose Service the parent chart labels jobLabel: node-exporter).
    ChartMonitor("{release}-kube-state-metrics", "kube-state-metrics",
                 ("kubeStateMetrics.enabled", "kube-state-metrics.prometheus.monitor.enabled")),
    ChartMonitor("{release}-prometheus-node-exporter", "node-exporter",
                 ("nodeExporter.enabled", "prometheus-node-exporter.prometheus.monitor.enabled")),
    # No jobLabel (or one naming a label the Service lacks, as grafana 12.11.1's "{{ .Release.Name }}"): the Service name.
    ChartMonitor("{fullname}-operator", "{fullname}-operator",
                 ("prometheusOperator.enabled", "prometheusOperator.serviceMonitor.selfMonitor")),
    ChartMonitor("{fullname}-prometheus", "{fullname}-prometheus", ("prometheus.enabled", "prometheus.serviceMonitor.selfMonitor")),
    ChartMonitor("{fullname}-alertmanager", "{fullname}-alertmanager",
                 ("alertmanager.enabled", "alertmanager.serviceMonitor.selfMonitor")),
    ChartMonitor("{release}-grafana", "{release}-grafana", ("grafana.enabled", "grafana.serviceMonitor.enabled")),
)


@dataclass(frozen=True)
class RequiredJob:
    """A scrape job the stack must have up: the job label its targets carry and the monitor that makes it."""

    job: str
    monitor: str  # "serviceMonitor/monitoring/kube-prometheus-stack-kubelet", or a scrape pool's name (exact)
    source: str  # where the requirement comes from, for the report
    exact: bool = False  # monitor is one scrape pool's whole name (a job of the loaded configuration)

    @property
    def pool_prefix(self) -> str:
        """Every endpoint of the monitor is one scrape pool '<monitor>/<endpoint index>'."""
        return self.monitor if self.exact else self.monitor + "/"

    def owns(self, target: dict) -> bool:
        pool = str(target.get("scrapePool", ""))
        return pool == self.monitor if self.exact else pool.startswith(self.pool_prefix)


def merged(base: dict, overlay: dict) -> dict:
    """Helm's coalescing of a values file over the chart's values: maps merge, anything else replaces."""
    out = dict(base)
    for key, value in (overlay or {}).items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def switch(values: dict, path: str) -> bool:
    node: Any = values
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return bool(node)


@cache
def chart_release() -> str:
    return yamltext.parse(VERSIONS_FILE.read_text())["charts"]["kube-prometheus-stack"]["release"]


def project_job(path: Path) -> RequiredJob:
    """One of stack/manifests' monitors: a PodMonitor's job is '<namespace>/<name>' unless it sets jobLabel."""
    doc = load(path)
    kind = {"ServiceMonitor": "serviceMonitor", "PodMonitor": "podMonitor"}[doc["kind"]]
    meta = doc["metadata"]
    monitor = f"{kind}/{meta['namespace']}/{meta['name']}"
    # A ServiceMonitor's job is its Service's name; istiod's Service is `istiod` (Istio 1.29.6,
    # manifests/charts/istio-control/istio-discovery/templates/service.yaml). Targets match by pool anyway.
    job = f"{meta['namespace']}/{meta['name']}" if kind == "podMonitor" else meta["name"]
    return RequiredJob(job, monitor, f"stack/manifests/{path.name}")


@dataclass(frozen=True)
class ChartRelease:
    """The kube-prometheus-stack release whose monitors a cluster's Prometheus scrapes, and where that was read."""

    release: str
    fullname: str
    namespace: str
    source: str


def chart_fullname(release: str) -> str:
    """kube-prometheus-stack 88.5.3 templates/_helpers.tpl kube-prometheus-stack.fullname (no fullnameOverride)."""
    name = release if "kube-prometheus-stack" in release else f"{release}-kube-prometheus-stack"
    return name[:26].rstrip("-")


def bring_up_release() -> ChartRelease:
    release = chart_release()
    return ChartRelease(release, chart_fullname(release), stack_namespace(), "the bring-up's release (stack/versions.yaml)")


def required_jobs(role: str, values_file: Path | None = None, chart: ChartRelease | None = None,
                  project: bool = True) -> tuple[RequiredJob, ...]:
    """The jobs a cluster of this role must have up, from the chart defaults merged with its values file; the chart's
    monitors named after `chart` (the bring-up's release by default); project=False leaves out stack/manifests'."""
    path = values_file or VALUES_FILE[role]
    values = merged(CHART_DEFAULTS, yamltext.parse(path.read_text()) or {})
    chart = chart or bring_up_release()
    names = {"release": chart.release, "fullname": chart.fullname}
    jobs = [RequiredJob(m.job.format(**names), f"serviceMonitor/{chart.namespace}/{m.name.format(**names)}",
                        f"kube-prometheus-stack values ({path.name})")
            for m in CHART_MONITORS if all(switch(values, s) for s in m.switches)]
    return tuple(jobs) + (tuple(project_job(MANIFESTS / name) for name in PROJECT_MONITORS[role]) if project else ())
