"""The Pushgateway's row of "scraped on every cluster": where its Service was found, its ServiceMonitor's pool and
job, its up series and targets."""

from __future__ import annotations

from conformance.clients.prometheus import PrometheusClient
from conformance.core.access import ServiceAbsent
from conformance.core.stack import StackService, stack_services
from conformance.probes.kubebench import pushes as kb
from conformance.probes.platform.targets import ScrapeTarget, Seen

# The operator names a ServiceMonitor target's job after its Service (prometheus-operator's default jobLabel).
PUSHGATEWAY_JOB = stack_services()["pushgateway"].service
NOT_SELECTED = ("the chart's ServiceMonitor is not selected by the stack's Prometheus (serviceMonitor.enabled, "
                "serviceMonitor.additionalLabels.release=<kube-prometheus-stack release>)")


def pushgateway_spec(access, cluster) -> StackService | None:
    """Where the cluster's Pushgateway Service was found; None (the bring-up's name) where it cannot be looked for or is
    not found. Two candidates stop the check, not observed."""
    try:
        return access.located(cluster, "pushgateway").spec
    except ServiceAbsent:
        return None


def scrape_target(spec: StackService | None) -> ScrapeTarget:
    """The Pushgateway found at `spec` (None: the bring-up's name): its pool, judged from the loaded configuration, then
    up{job=<its Service>} (the ServiceMonitor has no jobLabel), diagnosed from /api/v1/targets."""
    job = spec.service if spec else PUSHGATEWAY_JOB

    def read(prometheus: PrometheusClient) -> Seen:
        up = prometheus.query(f'up{{job="{job}"}}')
        if not up:
            return Seen(False, f"the {prometheus.name} has no target with job={job}")
        down = [s["metric"].get("instance", "") for s in up if float(s["value"][1]) != 1]
        if down:
            return Seen(False, f"the {prometheus.name}'s target job={job} is down: {', '.join(down)}")
        return Seen(True, f"the {prometheus.name}'s target job={job} is up", up)

    def diagnose(prometheus: PrometheusClient) -> str:
        mine = [t for t in prometheus.active_targets() if t.get("labels", {}).get("job") == job]
        if not mine:
            return f"no such target at all: {NOT_SELECTED}"
        return "; ".join(f"{t.get('scrapeUrl')}: {t.get('health')} {t.get('lastError') or ''}".strip() for t in mine)

    return ScrapeTarget(kb.pushgateway_pool(spec), "Pushgateway target not up", read, not_configured=NOT_SELECTED,
                        diagnose=diagnose)
