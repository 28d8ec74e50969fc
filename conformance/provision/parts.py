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
MANIFESTS = STACK_DIR / "manifests"
# What the guides apply for Jaeger: Istio's addon at the installed release (istio.io tasks/observability/
# distributed-tracing/jaeger: kubectl apply -f samples/addons/jaeger.yaml).
JAEGER_ADDON = "https://raw.githubusercontent.com/istio/istio/{istio}/samples/addons/jaeger.yaml"
ISTIO_NS = "istio-system"


@dataclass
class PartInstall:
    """A part's additions to the stack phase, by cluster name."""

    values: dict[str, list[Path]] = field(default_factory=dict)  # more -f files for kube-prometheus-stack
    set_json: dict[str, list[str]] = field(default_factory=dict)  # more --set-json for kube-prometheus-stack
    after_primary: list[Step] = field(default_factory=list)  # after the primary's kube-prometheus-stack
    istio_overlays: dict[str, list[Path]] = field(default_factory=dict)  # more --filename for `istioctl install`
    kiali: dict = field(default_factory=dict)  # merged into the Kiali CR's spec


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


def jaeger_image(versions: Versions) -> str:
    """The pinned Jaeger image, from the preload list (stack/versions.yaml images, apps.jaeger)."""
    return next(i for i in versions.images if "/jaegertracing/jaeger:" in i)


def tracing(part: Part, ctx: Context) -> PartInstall:
    """Istio's Jaeger addon on the primary at the pinned image; the primary's istiod (which configures every
    cluster's sidecars) gets the zipkin provider and the mesh-wide Telemetry; Kiali reads Jaeger's query API."""
    p, kp = ctx.topology.primary.name, ctx.kube(ctx.topology.primary.name)
    jaeger = stack_services()["jaeger"]
    plan = PartInstall(istio_overlays={p: [MANIFESTS / "istio-tracing.yaml"]})
    plan.after_primary += [
        Step("stack", p, "Jaeger (Istio's addon)", kp.kubectl("apply", "--filename", JAEGER_ADDON.format(istio=ctx.versions.istio)),
             timeout=120, retry=True, poll=5, waits_for="the addon manifest downloaded and applied"),
        # The addon's container is named jaeger; the pin replaces its 2.14.0 (stack/versions.yaml apps.jaeger).
        Step("stack", p, "Jaeger image at the pin",
             kp.kubectl("set", "image", "deployment/jaeger", f"jaeger={jaeger_image(ctx.versions)}", "--namespace", ISTIO_NS),
             timeout=60),
        Step("stack", p, "Jaeger Ready",
             kp.kubectl("rollout", "status", "deployment/jaeger", "--namespace", ISTIO_NS, "--timeout=300s"),
             timeout=320, waits_for="jaeger Deployment available"),
        Step("stack", p, "mesh-wide tracing Telemetry",
             kp.kubectl("apply", "--filename", str(MANIFESTS / "telemetry-tracing.yaml")), timeout=60),
    ]
    # Kiali v2.29.0 config/config.go TracingConfig; its HTTP client (use_grpc false) reads internal_url's /api/traces,
    # the query service under the addon's base_path /jaeger. No external_url: the suite reads through Kiali only.
    plan.kiali = {"external_services": {"tracing": {
        "enabled": True, "provider": "jaeger", "use_grpc": False, "external_url": "",
        "internal_url": f"http://{jaeger.service}.{jaeger.namespace}:{jaeger.port}{jaeger.web_root}"}}}
    return plan


INSTALLS: dict[str, Callable[[Part, Context], PartInstall]] = {
    "alerting": alerting,
    "tracing": tracing,
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
        for name, files in one.istio_overlays.items():
            merged.istio_overlays.setdefault(name, []).extend(files)
        for key, value in one.kiali.items():
            merged.kiali.setdefault(key, {}).update(value)
    return merged
