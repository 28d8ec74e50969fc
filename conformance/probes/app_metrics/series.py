"""What the app-metrics checks read: the app's scrape pool, job and series from stack/app, and why they are missing.

Names follow prometheus-operator v0.93 (pkg/prometheus/promcfg.go generateServiceMonitorConfig: job_name
serviceMonitor/<ns>/<name>/<endpoint index>, job = the Service's name unless spec.jobLabel names one of its
labels) and kube-prometheus-stack 88.5.3's ServiceMonitor selector (templates/prometheus/prometheus.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


from conformance.clients.prometheus import PrometheusClient
from conformance.core import yamltext
from conformance.core.access import ServiceAbsent
from conformance.core.http import ServiceError
from conformance.core.manifests import APP, scrape_pool
from conformance.probes.platform.scrape_jobs import VALUES_FILE, chart_release
from conformance.probes.platform.targets import ScrapeTarget, Seen

APP_FILE = APP / "example-app.yaml"
MONITOR_FILE = APP / "example-app-servicemonitor.yaml"
# brancz/prometheus-example-app main.go: a gauge set to 1 at start, labelled with the build's version; present
# from the first scrape, unlike http_requests_total, which has no series before a request.
SERIES = "version"


@dataclass(frozen=True)
class AppMetrics:
    """The sample app's metrics as the operator scrapes them: its pool, its job label, its Service and port."""

    namespace: str
    service: str
    port: str
    monitor: str  # "sample/example-app"
    pool: str  # "serviceMonitor/sample/example-app/0"
    job: str

    @property
    def selector(self) -> str:
        """The PromQL selector of the app's named series on any Prometheus."""
        return self.selector_with()

    def selector_with(self, *matchers: str) -> str:
        """The selector with more matchers, e.g. selector_with('cluster="workstation"')."""
        return SERIES + "{" + ",".join([f'job="{self.job}"', *matchers]) + "}"


@cache
def app_metrics() -> AppMetrics:
    docs = [d for d in yamltext.parse_all(APP_FILE.read_text()) if d]
    service = next(d for d in docs if d["kind"] == "Service")
    monitor = next(d for d in yamltext.parse_all(MONITOR_FILE.read_text()) if d)
    job_label = monitor["spec"].get("jobLabel")
    job = (service["metadata"].get("labels") or {}).get(job_label) if job_label else None
    meta = monitor["metadata"]
    return AppMetrics(service["metadata"]["namespace"], service["metadata"]["name"],
                      monitor["spec"]["endpoints"][0]["port"], f"{meta['namespace']}/{meta['name']}",
                      scrape_pool(MONITOR_FILE), job or service["metadata"]["name"])


def selector_wanted(role: str) -> str:
    """Which ServiceMonitors the role's Prometheus selects, as kube-prometheus-stack renders it from our values."""
    spec = ((yamltext.parse(VALUES_FILE[role].read_text()) or {}).get("prometheus") or {}).get("prometheusSpec") or {}
    if spec.get("serviceMonitorSelector"):
        return f"ServiceMonitors matching {spec['serviceMonitorSelector']} (prometheus.prometheusSpec.serviceMonitorSelector)"
    if spec.get("serviceMonitorSelectorNilUsesHelmValues", True):  # the chart's default is true
        return (f"ServiceMonitors labelled release={chart_release()} "
                "(prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues: true)")
    return "every ServiceMonitor (serviceMonitorSelector {})"


def not_selected(role: str) -> str:
    """Why the app's pool is missing from the configuration the role's Prometheus loaded: the operator writes a job per
    selected ServiceMonitor endpoint (promcfg.go generateServiceMonitorConfig), so only a new selection brings it."""
    app = app_metrics()
    return (f"the operator did not select ServiceMonitor {app.monitor}; it selects {selector_wanted(role)}, and the "
            "ServiceMonitor must carry it")


def scrape_target(role: str) -> ScrapeTarget:
    """The app's row of "scraped on every cluster": its pool, judged from the loaded configuration, then its targets."""
    app = app_metrics()

    def read(prometheus: PrometheusClient) -> Seen:
        up, state = target_state(prometheus, role)
        return Seen(up, state)

    return ScrapeTarget(app.pool, f"no up target in scrape pool {app.pool}", read, not_configured=not_selected(role))


def target_state(prom: PrometheusClient, role: str) -> tuple[bool, str]:
    """(up, what the Prometheus shows of the app's target): up, down with lastError, or why there is none."""
    app = app_metrics()
    seen = prom.targets("any")
    mine = [t for t in seen.get("activeTargets") or [] if t.get("scrapePool") == app.pool]
    if any(t.get("health") == "up" for t in mine):
        return True, f"{len(mine)} target(s) up in {app.pool}"
    if mine:
        t = mine[0]
        return False, (f"target {t.get('scrapeUrl')} of {app.pool} is {t.get('health')}: "
                       f"{t.get('lastError') or '(no error text yet: not scraped)'}")
    if app.pool not in prom.scrape_pools():
        return False, f"the {prom.name} has no scrape pool {app.pool}: {not_selected(role)}"
    dropped = [t for t in seen.get("droppedTargets") or [] if t.get("scrapePool") == app.pool]
    return False, (f"scrape pool {app.pool} discovers no target ({len(dropped)} endpoints dropped by its relabelling): "
                   f"Service {app.namespace}/{app.service} has no ready endpoint on port {app.port}, "
                   "or its labels do not match the ServiceMonitor's selector")


def why_not_on_primary(own: PrometheusClient | None, primary: PrometheusClient, cluster: str, is_primary: bool,
                       role: str, label: str = "cluster") -> str:
    """Why the cluster's app series are not on the primary: not scraped, or scraped and not forwarded."""
    app = app_metrics()
    try:
        elsewhere = sorted({s["metric"].get(label, "") for s in primary.query(f"count by ({label}) ({app.selector})")})
        extra = f"; the primary has it from {label} values {elsewhere}" if elsewhere else ""
        if own is None:
            return f"({cluster}'s Prometheus is not in the topology to ask){extra}"
        up, state = target_state(own, role)
        if not up:
            return f"the app is not scraped on {cluster}: {state}{extra}"
        if is_primary:
            return f"the {own.name} scrapes it ({state}) but stores no {app.selector} yet{extra}"
        local = own.query(app.selector)
        if not local:
            return f"the {own.name} scrapes it ({state}) but holds no {app.selector} yet{extra}"
        return f"the {own.name} holds {len(local)} {app.selector} series, the primary none: " + \
            remote_write_state(own) + extra
    except ServiceError as e:
        return f"(could not be asked: {e.headline})"


def remote_write_state(own: PrometheusClient) -> str:
    """What the remote's remote_write does with the app's series, from its loaded configuration."""
    queues = (yamltext.parse(own.config_yaml()) or {}).get("remote_write") or []
    if not queues:
        return "it has no remote_write configured (prometheus.prometheusSpec.remoteWrite)"
    relabelled = [q.get("url", "") for q in queues if q.get("write_relabel_configs")]
    if relabelled:
        return (f"its remote_write to {', '.join(relabelled)} has write_relabel_configs, which drop them "
                "(prometheus.prometheusSpec.remoteWrite[].writeRelabelConfigs)")
    return (f"it remote-writes to {', '.join(q.get('url', '') for q in queues)} without relabelling: "
            "the remote_write hop (the metrics checks) says why nothing arrives")


def role(cluster) -> str:
    """Which of this project's values the cluster's Prometheus was brought up with."""
    return "primary" if cluster.is_primary else "remote"


def own_prometheus(access, cluster) -> PrometheusClient | None:
    """The cluster's own Prometheus, asked only to say why its series are missing; None when the topology lacks it."""
    try:
        return PrometheusClient(access.endpoint(cluster, "prometheus").http)
    except ServiceAbsent:
        return None
