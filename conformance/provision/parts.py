"""What the bring-up adds for each optional part the topology lists (topology `parts:`, or `up --with`).

One entry of INSTALLS per part: its values overlays and --set-json for each cluster's kube-prometheus-stack,
and the steps that follow the primary's install. The stack phase lays them in; --dry-run shows them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conformance.events import EVENTS_JOB
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
    after_stack: list[Step] = field(default_factory=list)  # after every cluster's stack (the primary's addresses known)


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


EVENT_EXPORTER_VALUES = VALUES / "kubernetes-event-exporter.yaml"


def event_receivers(cluster: str, loki_push_url: str) -> str:
    """--set-json for the chart's config.receivers: one loki receiver with the cluster's stream labels.

    The whole list is replaced (helm --set-json), so the labels and the URL always travel together.
    """
    receiver = {"name": "loki", "loki": {"streamLabels": {"job": EVENTS_JOB, "cluster": cluster}, "url": loki_push_url}}
    return "config.receivers=" + json.dumps([receiver])


def events(part: Part, ctx: Context) -> PartInstall:
    """kubernetes-event-exporter on every cluster, pushing to the primary Loki: in-cluster, or its MetalLB address."""
    from conformance.provision.plan import HELM_STEP_TIMEOUT, helm_install  # plan imports this module

    topo, p = ctx.topology, ctx.topology.primary.name
    ns, loki = stack_namespace(), stack_services()["loki"]
    chart = ctx.versions.charts["kubernetes-event-exporter"]
    tag = ctx.versions.apps["kubernetes-event-exporter"]
    plan = PartInstall()
    for c in topo.clusters:
        # The remotes reach the primary's Loki as their Promtail does (plan.py stack_phase: the fact <p>.loki_ip).
        base = f"http://{loki.service}:{loki.port}" if c.is_primary else f"http://@{{{p}.loki_ip}}:{loki.port}"
        plan.after_stack.append(Step(
            "stack", c.name, f"install kubernetes-event-exporter (events → {p} Loki, cluster={c.name})",
            helm_install(ctx.kube(c.name), chart, ns, [EVENT_EXPORTER_VALUES], sets=[f"image.tag={tag}"],
                         set_json=[event_receivers(c.name, f"{base}/loki/api/v1/push")]),
            timeout=HELM_STEP_TIMEOUT, waits_for="the exporter's Deployment Ready"))
    return plan


INSTALLS: dict[str, Callable[[Part, Context], PartInstall]] = {
    "alerting": alerting,
    "events": events,
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
        merged.after_stack += one.after_stack
    return merged
