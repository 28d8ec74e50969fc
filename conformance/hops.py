"""The names of the hops the checks prove, in one place and one argument order: (area, cluster, primary).

`cluster` is the cluster the check is about (the parametrized one), `primary` the
topology's primary. The report's picture matches failures to hops by these names.
"""

from __future__ import annotations

from typing import Callable

from conformance.topology import Cluster

_NAMES: dict[str, Callable[[Cluster, Cluster], str]] = {
    "logs": lambda c, p: f"{'' if c.is_primary else 'remote '}{c.name} Promtail → {p.name} Loki",
    "metrics": lambda c, p: f"{c.name} Prometheus → {p.name} Prometheus (remote_write)",
    "mesh": lambda c, p: f"{c.name} Envoy → {p.name} Prometheus{'' if c.is_primary else ' (remote_write)'}",
    "kiali": lambda c, p: f"{p.name} Kiali → {c.name} API server",
    # The optional part alerting: rules evaluate on every cluster, alerts go to the primary's Alertmanager.
    "rules": lambda c, p: f"{c.name} Prometheus rule evaluation",
    "alerting": lambda c, p: f"{c.name} Prometheus → {p.name} Alertmanager",
    "alertmanager": lambda c, p: f"{p.name} Alertmanager",
    # The optional part tracing: each cluster's sidecars send spans to the primary's Jaeger; Kiali reads them there.
    "jaeger": lambda c, p: f"{p.name} Jaeger",
    "tracing": lambda c, p: f"{c.name} sidecars → {p.name} Jaeger",
    "kiali-tracing": lambda c, p: f"{p.name} Kiali → {p.name} Jaeger",
}


def hop(area: str, cluster: Cluster, primary: Cluster) -> str:
    """E.g. hop("logs", workstation, oke) == "remote workstation Promtail → oke Loki"."""
    return _NAMES[area](cluster, primary)
