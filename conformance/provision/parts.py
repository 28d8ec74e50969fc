"""What the bring-up adds for each optional part the topology lists (topology `parts:`, or `up --with`).

One entry of INSTALLS per part: its values overlays and --set-json for each cluster's kube-prometheus-stack,
and the steps that follow the primary's install. The stack phase lays them in; --dry-run shows them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conformance.provision.steps import Step
from conformance.provision.versions import Versions
from conformance.stack import STACK_DIR, stack_namespace, stack_services
from conformance.topology import Part, Topology

VALUES = STACK_DIR / "values"


@dataclass
class PartInstall:
    """A part's additions to the stack phase, by cluster name."""

    values: dict[str, list[Path]] = field(default_factory=dict)  # more -f files for kube-prometheus-stack
    set_json: dict[str, list[str]] = field(default_factory=dict)  # more --set-json for kube-prometheus-stack
    after_primary: list[Step] = field(default_factory=list)  # after the primary's kube-prometheus-stack


@dataclass(frozen=True)
class Context:
    """What a part's plan may read; `kube(name)` gives the cluster's kubectl argv builder."""

    topology: Topology
    versions: Versions
    kube: Callable[[str], object]
    lb_address: Callable[..., Step]


def alerting(part: Part, ctx: Context) -> PartInstall:
    """Alertmanager on the primary (kube-prometheus-stack-alerting.yaml); remotes send there or nowhere."""
    topo, p = ctx.topology, ctx.topology.primary.name
    ns, am = stack_namespace(), stack_services()["alertmanager"]
    # templates/_helpers.tpl kube-prometheus-stack.alertmanager.crname: <fullname>-alertmanager.
    cr = f"{ctx.versions.charts['kube-prometheus-stack'].release}-alertmanager"
    plan = PartInstall(values={p: [VALUES / "kube-prometheus-stack-alerting.yaml"]})
    # The operator, not helm, makes the Alertmanager StatefulSet: helm --wait does not wait for it.
    plan.after_primary.append(Step(
        "stack", p, "Alertmanager available",
        ctx.kube(p).kubectl("wait", f"alertmanager/{cr}", "--namespace", ns, "--for=condition=Available",
                            "--timeout=300s"),
        timeout=320, waits_for="prometheus-operator's Alertmanager StatefulSet Ready"))
    if part.options["remote_alerts"] == "primary" and topo.remotes:
        plan.after_primary.append(ctx.lb_address("stack", ctx.kube(p), ns, am.service, f"{p}.alertmanager_ip", "Alertmanager"))
        # Prometheus' own alertmanager_config, as the chart's additionalAlertManagerConfigs Secret carries it.
        targets = [{"static_configs": [{"targets": [f"@{{{p}.alertmanager_ip}}:{am.port}"]}]}]
        for remote in topo.remotes:
            plan.set_json[remote.name] = ["prometheus.prometheusSpec.additionalAlertManagerConfigs=" + json.dumps(targets)]
    return plan


def configmap_dashboards(part: Part, ctx: Context) -> PartInstall:
    """The dashboard sidecar's folder annotation and Grafana's folders from its subfolders, on the primary."""
    return PartInstall(values={ctx.topology.primary.name: [CONFIGMAP_DASHBOARDS_VALUES]})


CONFIGMAP_DASHBOARDS_VALUES = VALUES / "kube-prometheus-stack-configmap-dashboards.yaml"

INSTALLS: dict[str, Callable[[Part, Context], PartInstall]] = {
    "alerting": alerting,
    "configmap-dashboards": configmap_dashboards,
}


def plan_parts(ctx: Context) -> PartInstall:
    """Every listed part's additions, merged in the topology's order."""
    merged = PartInstall()
    for part in ctx.topology.parts.values():
        one = INSTALLS[part.name](part, ctx)
        for name, files in one.values.items():
            merged.values.setdefault(name, []).extend(files)
        for name, sets in one.set_json.items():
            merged.set_json.setdefault(name, []).extend(sets)
        merged.after_primary += one.after_primary
    return merged
