"""The names of the hops the checks prove, in one place and one argument order: (area, cluster, primary).

`cluster` is the cluster the check is about (the parametrized one), `primary` the
topology's primary. The report's picture matches failures to hops by these names.
"""

from __future__ import annotations

from typing import Callable

from conformance.topology import Cluster

_NAMES: dict[str, Callable[[Cluster, Cluster], str]] = {
    # The log agent is the stack profile's (conformance/profiles.py): Promtail, or Alloy.
    "logs": lambda c, p, agent="Promtail": f"{'' if c.is_primary else 'remote '}{c.name} {agent} → {p.name} Loki",
    "metrics": lambda c, p: f"{c.name} Prometheus → {p.name} Prometheus (remote_write)",
    "mesh": lambda c, p: f"{c.name} Envoy → {p.name} Prometheus{'' if c.is_primary else ' (remote_write)'}",
    "kiali": lambda c, p: f"{p.name} Kiali → {c.name} API server",
    # The optional part alerting: rules evaluate on every cluster, alerts go to the primary's Alertmanager.
    "rules": lambda c, p: f"{c.name} Prometheus rule evaluation",
    "alerting": lambda c, p: f"{c.name} Prometheus → {p.name} Alertmanager",
    "alertmanager": lambda c, p: f"{p.name} Alertmanager",
}


def hop(area: str, cluster: Cluster, primary: Cluster, agent: str | None = None) -> str:
    """E.g. hop("logs", workstation, oke) == "remote workstation Promtail → oke Loki"; `agent` names the
    stack profile's log agent ("Alloy") where the profile is not the default."""
    return _NAMES[area](cluster, primary, agent) if agent else _NAMES[area](cluster, primary)


def every_agent(primary: Cluster, agent: str = "Promtail") -> str:
    """The hop of a check about every cluster's logs at once, e.g. "every Alloy → oke Loki"."""
    return f"every {agent} → {primary.name} Loki"
