"""The names of the hops the checks prove, in one place and one argument order: (area, cluster, primary).

`cluster` is the cluster the check is about (the parametrized one), `primary` the
topology's primary. The report's picture matches failures to hops by these names.
"""

from __future__ import annotations

from typing import Callable

from conformance.core.topology import Cluster

_NAMES: dict[str, Callable[[Cluster, Cluster], str]] = {
    # The log agent is the stack profile's (conformance/core/profiles.py): Promtail, or Alloy.
    "logs": lambda c, p, agent="Promtail": f"{'' if c.is_primary else 'remote '}{c.name} {agent} → {p.name} Loki",
    "metrics": lambda c, p: f"{c.name} Prometheus → {p.name} Prometheus (remote_write)",
    "mesh": lambda c, p: f"{c.name} Envoy → {p.name} Prometheus{'' if c.is_primary else ' (remote_write)'}",
    "kiali": lambda c, p: f"{p.name} Kiali → {c.name} API server",
    # The optional part alerting: rules evaluate on every cluster, alerts go to the primary's Alertmanager.
    "rules": lambda c, p: f"{c.name} Prometheus rule evaluation",
    "alerting": lambda c, p: f"{c.name} Prometheus → {p.name} Alertmanager",
    "alertmanager": lambda c, p: f"{p.name} Alertmanager",
    # The optional part app-metrics: each cluster's Prometheus scrapes the app; its series reach the primary.
    "app_scrape": lambda c, p: f"{c.name} app → {c.name} Prometheus",
    "app_series": lambda c, p: f"{c.name} app → {p.name} Prometheus{'' if c.is_primary else ' (remote_write)'}",
    # The optional part kube-bench: each node's kube-bench pushes to its cluster's Pushgateway, scraped there.
    "kube-bench": lambda c, p: f"{c.name} kube-bench → {c.name} Pushgateway → {p.name} Prometheus",
    # The optional part kube-state-metrics: each cluster's ksm, scraped there, its series on the primary.
    "kube-state-metrics": lambda c, p: f"{c.name} kube-state-metrics → {p.name} Prometheus",
    # The optional part events: each cluster's kubernetes-event-exporter pushes to the primary Loki.
    "events": lambda c, p: f"{c.name} event exporter → {p.name} Loki",
    # The optional part configmap-dashboards: a labelled ConfigMap becomes a file, the file a dashboard.
    "configmap_dashboards": lambda c, p: f"{p.name} ConfigMap → Grafana sidecar → {p.name} Grafana",
    "configmap_panels": lambda c, p: f"{p.name} ConfigMap dashboard → datasources",
    # The optional part tracing: each cluster's sidecars send spans to the primary's Jaeger; Kiali reads them there.
    "jaeger": lambda c, p: f"{p.name} Jaeger",
    "tracing": lambda c, p: f"{c.name} sidecars → {p.name} Jaeger",
    "kiali-tracing": lambda c, p: f"{p.name} Kiali → {p.name} Jaeger",
}


def hop(area: str, cluster: Cluster, primary: Cluster, agent: str | None = None) -> str:
    """E.g. hop("logs", workstation, oke) == "remote workstation Promtail → oke Loki"; `agent` names the
    stack profile's log agent ("Alloy") where the profile is not the default."""
    return _NAMES[area](cluster, primary, agent) if agent else _NAMES[area](cluster, primary)


def every_agent(primary: Cluster, agent: str = "Promtail") -> str:
    """The hop of a check about every cluster's logs at once, e.g. "every Alloy → oke Loki"."""
    return f"every {agent} → {primary.name} Loki"
