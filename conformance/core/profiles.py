"""Stack profiles: which log pipeline a stack runs (issue 12). One place names each profile's agent.

`promtail` (the default): loki-stack 2.10.3 with Loki 2.9.3 and Promtail. `alloy`: the Loki chart
(grafana-community) in monolithic mode with Loki 3.x, and the Alloy chart as a DaemonSet on every cluster.
`vector-opensearch` (issue 20): the opensearch chart (one node, security plugin off) and OpenSearch Dashboards on the
primary instead of Loki, and the vector chart (role Agent, a DaemonSet) on every cluster writing to that OpenSearch.
The topology's `profile:` key says which one a stack uses; `--profile` on the bring-up and the suites overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.core.errors import ConfigError


@dataclass(frozen=True)
class Profile:
    """One stack profile: its log agent as checks name it, and the stack/services.yaml key of its metrics."""

    name: str
    agent: str  # how hops and diagnoses name the log agent: "Promtail", "Alloy"
    agent_service: str  # the services.yaml key of the agent's HTTP port (/metrics)
    summary: str
    services: tuple[str, ...]  # the services.yaml keys only this profile's log pipeline runs


DEFAULT_PROFILE = "promtail"
PROFILES: dict[str, Profile] = {p.name: p for p in [
    Profile("promtail", "Promtail", "promtail", "loki-stack 2.10.3: Loki 2.9.3 and Promtail on every cluster",
            ("loki", "promtail")),
    Profile("alloy", "Alloy", "alloy",
            "the Loki chart (monolithic, Loki 3.x) on the primary; Grafana Alloy as a DaemonSet on every cluster",
            ("loki", "alloy")),
    Profile("vector-opensearch", "Vector", "vector",
            "OpenSearch (one node, security plugin off) and OpenSearch Dashboards on the primary; Vector (role Agent) "
            "as a DaemonSet on every cluster, writing daily logs-%Y-%m-%d indices; log search in OpenSearch Dashboards",
            ("opensearch", "opensearch-dashboards", "vector")),
]}


def foreign_services(name: str | None) -> set[str]:
    """The services.yaml keys other profiles' log pipelines run and this one does not (Loki on vector-opensearch)."""
    own = set(profile(name).services)
    return {key for p in PROFILES.values() for key in p.services} - own


def profile(name: str | None) -> Profile:
    """The named profile (the default for None); an unknown name is a ConfigError listing the known ones."""
    name = name or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ConfigError(f"profile {name!r}: unknown; expected one of {', '.join(PROFILES)}")
    return PROFILES[name]
