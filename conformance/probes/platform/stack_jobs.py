"""Which scrape jobs a cluster's stack must have up: this project's values on its own bring-up (scrape_jobs.py), else
what the user's stack is configured to scrape: the monitors its Prometheus resource selects, or where that resource
cannot be read, the jobs of the configuration Prometheus loaded."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.core.http import ServiceError
from conformance.probes.metrics.prometheus_intent import FIELDS, GROUP, VERSION, PrometheusIntent, monitor_selection, read_intent
from conformance.probes.platform.scrape_jobs import RequiredJob, required_jobs
from conformance.core.stack_owner import stack_owner

KIND_PREFIX = {"ServiceMonitor": "serviceMonitor", "PodMonitor": "podMonitor"}


@dataclass(frozen=True)
class Expectation:
    """The jobs, and where the expectation came from (for the message and the report)."""

    jobs: tuple[RequiredJob, ...]
    source: str
    project: bool = False  # the project's own list (its bring-up)


def expected_jobs(access, cluster, prometheus) -> Expectation:
    """The project's list where the stack is its bring-up's; else the user's stack's own configuration."""
    owner = stack_owner(access, cluster, "prometheus")
    if owner.bring_up:
        return Expectation(required_jobs(cluster.role), f"this project's values for a {cluster.role} ({owner.why})",
                           project=True)
    intent = read_intent(access, cluster)
    why = intent if isinstance(intent, str) else "its monitors cannot be listed"
    if isinstance(intent, PrometheusIntent):
        selected = selected_monitors(access.kube(cluster), intent)
        if selected:
            return Expectation(selected, f"the monitors {intent.source} selects ({owner.why})")
        if selected is not None:  # scrape configs of its own (additionalScrapeConfigs) may be all it has
            why = f"{intent.source} selects no ServiceMonitor or PodMonitor"
    return Expectation(loaded_jobs(prometheus), f"the jobs of the configuration {prometheus.name} loaded ({owner.why}; "
                                                f"{why})")


def selected_monitors(kube, intent: PrometheusIntent) -> tuple[RequiredJob, ...] | None:
    """Every ServiceMonitor and PodMonitor in the cluster the resource selects (the operator's selectObjects); None
    when they cannot be listed."""
    jobs = []
    for kind, (_, _, plural) in FIELDS.items():
        try:
            listed = kube.call(f"list {plural} ({GROUP}/{VERSION})", kube.custom().list_cluster_custom_object,
                               GROUP, VERSION, plural, ok=(403, 404))
        except ServiceError:
            return None
        if listed is None:
            return None
        for item in listed.get("items") or []:
            ns, name = item["metadata"]["namespace"], item["metadata"]["name"]
            if monitor_selection(kube, intent, kind, ns, name).selected:
                jobs.append(RequiredJob(f"{ns}/{name}", f"{KIND_PREFIX[kind]}/{ns}/{name}",
                                        f"{kind} {ns}/{name}, selected by {intent.source}"))
    return tuple(sorted(jobs, key=lambda j: j.monitor))


def loaded_jobs(prometheus) -> tuple[RequiredJob, ...]:
    """Each job of the loaded configuration (its scrape pools where scrape_config_files keep some elsewhere)."""
    names = prometheus.configured_jobs()
    if names is None:
        names = set(prometheus.scrape_pools())
    return tuple(RequiredJob(n, n, f"the configuration {prometheus.name} loaded", exact=True) for n in sorted(names))
