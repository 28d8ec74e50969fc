"""The log pipeline's installs for the stack profile (issue 12): loki-stack (promtail) or the Loki and Alloy charts.

Primary: Loki and the agent, pushing to Loki in-cluster. Remote: the agent only, pushing to the primary
Loki's MetalLB address (the `{primary}.loki_ip` fact the stack phase captures). --dry-run shows each argv.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from conformance.errors import ConfigError
from conformance.provision.steps import Step
from conformance.provision.versions import Versions
from conformance.stack import STACK_DIR, stack_namespace, stack_services
from conformance.topology import Topology

VALUES = STACK_DIR / "values"
# The charts (stack/versions.yaml charts: keys) of each profile's log pipeline; no other profile installs them.
PROFILE_CHARTS = {"promtail": ("loki-stack",), "alloy": ("loki", "alloy")}
HELM_STEP_TIMEOUT = 11 * 60.0
PUSH_PATH = "/loki/api/v1/push"


def promtail_clients(base_url: str, cluster: str) -> str:
    """--set-json for promtail.config.clients: replaces the whole list, so external_labels stays with the URL."""
    return "promtail.config.clients=" + json.dumps(
        [{"url": f"{base_url}{PUSH_PATH}", "external_labels": {"cluster": cluster}}])


def alloy_target(base_url: str, cluster: str) -> str:
    """--set-json for stack/values/alloy.yaml's `conformance:` block, which loki.write's url and external_labels read."""
    return "conformance=" + json.dumps({"cluster": cluster, "lokiPushUrl": f"{base_url}{PUSH_PATH}"})


def charts_in_use(topology: Topology, charts: dict) -> list:
    """The pinned charts the topology's profile and parts install, in versions.yaml order."""
    from conformance.provision.parts import charts_of_absent_parts  # parts imports the plan, which imports this

    others = {c for name, keys in PROFILE_CHARTS.items() if name != topology.profile for c in keys}
    others |= charts_of_absent_parts(topology)
    return [c for key, c in charts.items() if key not in others]


def kps_values(topology: Topology) -> list[Path]:
    """kube-prometheus-stack overlays the profile needs on the primary (Grafana's Loki datasource URL)."""
    return [VALUES / "kube-prometheus-stack-alloy.yaml"] if topology.profile == "alloy" else []


def primary_steps(topology: Topology, versions: Versions, kube, helm_install: Callable[..., tuple[str, ...]]) -> list[Step]:
    """Loki and the primary's own agent."""
    ns, p = stack_namespace(), topology.primary.name
    loki = stack_services(profile=topology.profile)["loki"]
    local = f"http://{loki.service}:{loki.port}"
    charts = versions.charts
    if topology.profile == "alloy":
        return [
            Step("stack", p, "install Loki (Loki chart, monolithic, Loki 3.x)",
                 helm_install(kube, charts["loki"], ns, [VALUES / "loki.yaml"]),
                 timeout=HELM_STEP_TIMEOUT, waits_for="Loki StatefulSet Ready"),
            Step("stack", p, "install Alloy (DaemonSet, loki.write to the primary Loki)",
                 helm_install(kube, charts["alloy"], ns, [VALUES / "alloy.yaml"], set_json=[alloy_target(local, p)]),
                 timeout=HELM_STEP_TIMEOUT, waits_for="Alloy DaemonSet Ready"),
        ]
    return [Step("stack", p, "install loki-stack (Loki + Promtail)",
                 helm_install(kube, charts["loki-stack"], ns, [VALUES / "loki-stack.yaml"],
                              set_json=[promtail_clients(local, p)]),
                 timeout=HELM_STEP_TIMEOUT, waits_for="Loki and Promtail Ready")]


def remote_steps(topology: Topology, versions: Versions, remote: str, kube,
                 helm_install: Callable[..., tuple[str, ...]]) -> list[Step]:
    """The remote's agent, pushing to the primary Loki through its MetalLB address."""
    ns, p = stack_namespace(), topology.primary.name
    loki = stack_services(profile=topology.profile)["loki"]
    far = f"http://@{{{p}.loki_ip}}:{loki.port}"
    if topology.profile == "alloy":
        return [Step("stack", remote, "install Alloy (DaemonSet, loki.write to the primary Loki)",
                     helm_install(kube, versions.charts["alloy"], ns, [VALUES / "alloy.yaml"],
                                  set_json=[alloy_target(far, remote)]),
                     timeout=HELM_STEP_TIMEOUT, waits_for="Alloy DaemonSet Ready")]
    return [Step("stack", remote, "install loki-stack (Promtail only, pushing to the primary)",
                 helm_install(kube, versions.charts["loki-stack"], ns, [VALUES / "loki-stack-remote.yaml"],
                              set_json=[promtail_clients(far, remote)]),
                 timeout=HELM_STEP_TIMEOUT, waits_for="Promtail Ready")]


def move_steps(topology: Topology, from_profile: str, kube: dict, old: Versions) -> list[Step]:
    """The move promtail → alloy before the new pipeline's installs: each Promtail stops (it saves its positions on
    the way out, which Alloy's legacy_positions_file then reads), so no two agents ship the same file at once."""
    if from_profile == topology.profile:
        return []
    if (from_profile, topology.profile) != ("promtail", "alloy"):
        raise ConfigError(f"profile move {from_profile} → {topology.profile}: only promtail → alloy is planned")
    ns, chart = stack_namespace(), old.charts["loki-stack"]  # the release as the old pins installed it
    return [Step("upgrade", c.name, "stop Promtail (loki-stack promtail.enabled=false; positions kept on the node)",
                 kube[c.name].helm("upgrade", chart.release, chart.name, "--repo", chart.repo, "--version", chart.version,
                                   "--namespace", ns, "--reuse-values", "--set", "promtail.enabled=false", "--wait",
                                   "--timeout", "10m"),
                 timeout=HELM_STEP_TIMEOUT, waits_for="Promtail DaemonSet gone")
            for c in topology.clusters]
