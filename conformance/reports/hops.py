"""The hops of the topology picture and which checks decide each one's colour.

A hop belongs to an area (the check's marker) and a cluster: the remote Promtail →
primary Loki hop of `workstation` is coloured by the `logs` checks of `workstation` (Vector → OpenSearch on the
vector-opensearch profile). Checks that are not per cluster (e.g. Loki's cluster label values) count for the primary,
except a failure whose diagnosis names another hop (titles match the suites' hop names).
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.core.names import PART_ALIASES
from conformance.core.profiles import PROFILES
from conformance.reports.model import Check, Run

AGENTS = {name: p.agent for name, p in PROFILES.items()}
# Where each profile's logs are stored, as the logs suite's hops name it: OpenSearch where the profile runs it.
LOG_STORES = {name: "OpenSearch" if "opensearch" in p.services else "Loki" for name, p in PROFILES.items()}

# Worst first: the hop shows the worst outcome among its checks.
SEVERITY = ("failed", "warning", "skipped", "passed", "unchecked")
# Which measurement to print on a hop's arrow.
HEADLINE_LATENCY = {
    "logs": ("log_propagation_seconds", "log propagation"),
    "metrics": ("remote_write_sample_age_seconds", "sample age"),
}


@dataclass(frozen=True)
class Hop:
    """An arrow of the picture: `source` → `target`, decided by the checks of (area, cluster)."""

    area: str
    cluster: str
    source: str
    target: str

    @property
    def title(self) -> str:
        return f"{self.source} → {self.target}"


def log_agent(run: Run) -> str:
    """The run's log agent as the suites named it: the stack profile's (run property `profile`)."""
    return AGENTS.get(run.properties.get("profile", "promtail"), "Promtail")


def log_store(run: Run) -> str:
    """Where the run's logs are stored as the suites named it: Loki, or OpenSearch on the vector-opensearch profile."""
    return LOG_STORES.get(run.properties.get("profile", "promtail"), "Loki")


def hops_for(run: Run, primary: str) -> list[Hop]:
    """Every hop of the mission, for each cluster of the run."""
    agent, store = log_agent(run), log_store(run)
    datasources = "Prometheus, Loki" if store == "Loki" else "Prometheus"  # Grafana has no log datasource there
    hops = [
        Hop("logs", primary, f"{primary} {agent}", f"{primary} {store}"),
        Hop("mesh", primary, f"{primary} Envoy", f"{primary} Prometheus"),
        Hop("dashboards", primary, f"{primary} Grafana", f"its datasources ({datasources})"),
        Hop("kiali", primary, f"{primary} Kiali", f"{primary} API server"),
    ]
    for remote in [c for c in run.clusters if c != primary]:
        hops += [
            Hop("logs", remote, f"remote {remote} {agent}", f"{primary} {store}"),
            Hop("metrics", remote, f"{remote} Prometheus", f"{primary} Prometheus (remote_write)"),
            Hop("mesh", remote, f"{remote} Envoy", f"{remote} Prometheus"),
            Hop("kiali", remote, f"{primary} Kiali", f"{remote} API server"),
        ]
    return hops + part_hops(run, primary)


def part_hops(run: Run, primary: str) -> list[Hop]:
    """The hops of the optional parts the run's topology lists (run property part.<name>), and only those."""
    hops = []
    alerting = run.properties.get("part.alerting")
    if alerting is not None:
        hops.append(Hop("alerting", primary, f"{primary} Prometheus", f"{primary} Alertmanager"))
        if "remote_alerts=none" not in alerting.split(","):
            hops += [Hop("alerting", r, f"{r} Prometheus", f"{primary} Alertmanager")
                     for r in run.clusters if r != primary]
    if run.properties.get("part.app-metrics") is not None:
        for c in run.clusters:
            hops.append(Hop("app_metrics", c, f"{c} app", f"{c} Prometheus"))
            if c != primary:
                hops.append(Hop("app_metrics", c, f"{c} app", f"{primary} Prometheus (remote_write)"))
    if any(run.properties.get(f"part.{name}") is not None for name in ("kube-bench", *PART_ALIASES)):
        # One hop per cluster, titled as the suite names it (conformance/core/hops.py "kube-bench"); a report written
        # before the part was hyphenated says part.kubebench.
        hops += [Hop("kube_bench", c, f"{c} kube-bench", f"{c} Pushgateway → {primary} Prometheus") for c in run.clusters]
    if run.properties.get("part.kube-state-metrics") is not None:
        # Titles are the suite's hop names: each cluster's ksm, its series on the primary.
        hops += [Hop("kube_state_metrics", c, f"{c} kube-state-metrics", f"{primary} Prometheus") for c in run.clusters]
    if run.properties.get("part.events") is not None:  # every cluster's exporter pushes to the primary Loki
        hops += [Hop("events", c, f"{c} event exporter", f"{primary} Loki") for c in run.clusters]
    if run.properties.get("part.configmap-dashboards") is not None:
        # The suites' hop name: "<primary> ConfigMap → Grafana sidecar → <primary> Grafana".
        hops.append(Hop("configmap_dashboards", primary, f"{primary} ConfigMap", f"Grafana sidecar → {primary} Grafana"))
    if run.properties.get("part.tracing") is not None:
        # The suites' hop names (conformance/core/hops.py tracing, kiali-tracing): every cluster's sidecars, and Kiali.
        hops += [Hop("tracing", c, f"{c} sidecars", f"{primary} Jaeger") for c in run.clusters]
        hops.append(Hop("tracing", primary, f"{primary} Kiali", f"{primary} Jaeger"))
    return hops


def checks_of(run: Run, area: str, cluster: str) -> list[Check]:
    """The checks of one area on one cluster."""
    return [c for c in run.checks if c.area == area and c.cluster == cluster]


def checks_of_hop(run: Run, hop: Hop, hops: list[Hop]) -> list[Check]:
    """The checks that colour a hop: its area and cluster, or a failure that names it."""
    titles = [h.title for h in hops if h.area == hop.area]
    out = []
    for c in run.checks:
        if c.area != hop.area:
            continue
        named = [t for t in titles if t in c.message] if c.failing else []
        if (hop.title in named) if named else c.cluster == hop.cluster:
            out.append(c)
    return out


def status(checks: list[Check]) -> str:
    """failed (a must found it broken), warning (a should did), skipped (not tested: a check of it was not run or
    could not observe it), passed, or unchecked (no check of it applies to this run)."""
    found = [c for c in checks if c.failing and c.outcome != "blocked"]
    if any(c.requirement == "must" for c in found):
        return "failed"
    if found:
        return "warning"
    relevant = [c for c in checks if c.outcome != "not_applicable"]
    if not relevant:
        return "unchecked"
    if any(c.outcome in ("skipped", "blocked") for c in relevant):
        return "skipped"
    return "passed"


def latency_label(area: str, checks: list[Check]) -> str:
    """E.g. `log propagation 0.42 s` from the hop's checks, or empty."""
    if area not in HEADLINE_LATENCY:
        return ""
    prop, words = HEADLINE_LATENCY[area]
    values = [c.latencies[prop] for c in checks if prop in c.latencies]
    return f"{words} {max(values):.2f} s" if values else ""


def primary_of(run: Run) -> str:
    """The primary's name from the run properties (the first cluster when absent)."""
    return run.properties.get("primary") or (run.clusters[0] if run.clusters else "primary")
