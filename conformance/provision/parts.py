"""What the bring-up adds for each optional part the topology lists (topology `parts:`, or `up --with`).

One entry of INSTALLS per part: its values overlays and --set-json for each cluster's kube-prometheus-stack,
and the steps that follow the primary's install. The stack phase lays them in; --dry-run shows them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from conformance.probes.kubebench import pushes as kb
from conformance.core.errors import ConfigError
from conformance.probes.events.probe_event import EVENTS_JOB
from conformance.core.profiles import foreign_services
from conformance.provision.commands import HELM_STEP_TIMEOUT, helm_install
from conformance.provision.steps import Step
from conformance.core.versions import Versions
from conformance.probes.platform.scrape_jobs import CHART_DEFAULTS, VALUES_FILE, merged, switch
from conformance.core.stack import STACK_DIR, stack_namespace, stack_services
from conformance.core.topology import Part, Topology

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
    after_app: list[Step] = field(default_factory=list)  # after the sample app, on any cluster
    after_remote: dict[str, list[Step]] = field(default_factory=dict)  # after that remote's kube-prometheus-stack
    after_stack: list[Step] = field(default_factory=list)  # after every cluster's stack (the primary's addresses known)
    istio_overlays: dict[str, list[Path]] = field(default_factory=dict)  # more --filename for `istioctl install`
    kiali: dict = field(default_factory=dict)  # merged into the Kiali CR's spec


@dataclass(frozen=True)
class Context:
    """What a part's plan may read; `kube(name)` gives the cluster's kubectl argv builder."""

    topology: Topology
    versions: Versions
    kube: Callable[[str], object]
    lb_address: Callable[..., Step]
    file: Callable[[str, str], Path] = lambda cluster, name: Path(name)  # the bring-up's file (State.file) for rendering


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


APP = STACK_DIR / "app"
# stack/app files of the part app-metrics: the app and its Service, its ServiceMonitor (every cluster);
# the port-level PERMISSIVE policy goes to the primary only, where istiod reads Istio configuration.
APP_METRICS_FILES = ("example-app.yaml", "example-app-servicemonitor.yaml")
APP_METRICS_MTLS = "example-app-mtls.yaml"


def app_metrics(part: Part, ctx: Context) -> PartInstall:
    """The metrics-exposing sample app with its ServiceMonitor on every cluster, once the app's namespace exists."""
    plan = PartInstall()
    app = next(d for d in yaml.safe_load_all((APP / APP_METRICS_FILES[0]).read_text()) if d and d["kind"] == "Deployment")
    ns, name = app["metadata"]["namespace"], app["metadata"]["name"]
    for c in ctx.topology.clusters:
        files = [*APP_METRICS_FILES, *([APP_METRICS_MTLS] if c.is_primary else [])]
        argv = ["apply"] + [a for f in files for a in ("--filename", str(APP / f))]
        plan.after_app.append(Step("app", c.name, f"app-metrics: {name}, its Service and ServiceMonitor",
                                   ctx.kube(c.name).kubectl(*argv), timeout=60))
    for c in ctx.topology.clusters:
        plan.after_app.append(Step(
            "app", c.name, f"{name} Ready",
            ctx.kube(c.name).kubectl("rollout", "status", f"deployment/{name}", "--namespace", ns, "--timeout=300s"),
            timeout=320, waits_for=f"{name} with its sidecar"))
    return plan


def kubebench(part: Part, ctx: Context) -> PartInstall:
    """On every cluster, after its kube-prometheus-stack (the ServiceMonitor CRD): the Pushgateway, scraped with
    honor_labels, and one kube-bench CronJob per node of the cluster's node list, each run once at once."""

    ns, pg = stack_namespace(), stack_services()["pushgateway"]
    chart, apps = ctx.versions.charts["prometheus-pushgateway"], ctx.versions.apps
    kps = ctx.versions.charts["kube-prometheus-stack"].release
    # serviceMonitorSelectorNilUsesHelmValues: true (stack/values): the stack's Prometheus selects release=<its release>.
    sets = [f"image.tag={apps['pushgateway']}", f"serviceMonitor.namespace={ns}", f"serviceMonitor.additionalLabels.release={kps}"]
    url = f"http://{pg.service}.{ns}.svc:{pg.port}"
    plan = PartInstall()
    for c in ctx.topology.clusters:
        name, kube = c.name, ctx.kube(c.name)
        rendered = ctx.file(name, "kube-bench.yaml")
        steps = [
            Step("stack", name, "install prometheus-pushgateway (scraped with honor_labels)",
                 helm_install(kube, chart, ns, [VALUES / "prometheus-pushgateway.yaml"], sets=sets),
                 timeout=HELM_STEP_TIMEOUT, waits_for="Pushgateway Ready"),
            Step("stack", name, "node list for kube-bench",
                 kube.kubectl("get", "nodes", "--output", "jsonpath={.items[*].metadata.name}"),
                 timeout=60, retry=True, poll=2, capture=f"{name}.nodes", ready=lambda out: bool(out.strip())),
            Step("stack", name, f"render a kube-bench CronJob per node (every {part.options['interval']})",
                 action=lambda f, name=name, path=rendered: _write(path, kb.render_node_manifests(
                     str(f[f"{name}.nodes"]).split(), part.options["interval"], kb.images(apps), url, ns))),
            Step("stack", name, "apply kube-bench CronJobs and first runs", kube.kubectl("apply", "--filename", str(rendered)),
                 timeout=60),
            Step("stack", name, "kube-bench first run on every node",
                 kube.kubectl("wait", "job", "--selector", "monitoring-conformance/run=first", "--namespace", ns,
                              "--for=condition=complete", "--timeout=600s"),
                 timeout=620, waits_for="each node's first kube-bench Job pushed its totals"),
        ]
        if c.is_primary:
            plan.after_primary += steps
        else:
            plan.after_remote[name] = steps
    return plan


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# kube-prometheus-stack 88.5.3 values.yaml: the switches that deploy kube-state-metrics (the subchart's condition)
# and render its ServiceMonitor (kube-state-metrics 8.4.0 templates/servicemonitor.yaml).
KSM_SWITCHES = ("kubeStateMetrics.enabled", "kube-state-metrics.prometheus.monitor.enabled")


def kube_state_metrics(part: Part, ctx: Context) -> PartInstall:
    """On by default: a --set-json only for a cluster whose values file turns ksm or its ServiceMonitor off."""
    plan = PartInstall()
    for cluster in ctx.topology.clusters:
        role = "primary" if cluster.is_primary else "remote"
        values = merged(CHART_DEFAULTS, yaml.safe_load(VALUES_FILE[role].read_text()) or {})
        off = [f"{path}=true" for path in KSM_SWITCHES if not switch(values, path)]
        if off:
            plan.set_json[cluster.name] = off
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

    topo, p = ctx.topology, ctx.topology.primary.name
    if "loki" in foreign_services(topo.profile):
        raise ConfigError(f"part events: the exporter pushes to the primary Loki, and profile {topo.profile} runs "
                          f"none (its logs are in OpenSearch); the part is not yet supported on this profile")
    ns, loki = stack_namespace(), stack_services(profile=topo.profile)["loki"]
    chart = ctx.versions.charts["kubernetes-event-exporter"]
    tag = ctx.versions.apps["kubernetes-event-exporter"]
    plan = PartInstall()
    for c in topo.clusters:
        # The remotes reach the primary's Loki as their Promtail does (phases/stack.py stack_phase: the fact <p>.loki_ip).
        base = f"http://{loki.service}:{loki.port}" if c.is_primary else f"http://@{{{p}.loki_ip}}:{loki.port}"
        plan.after_stack.append(Step(
            "stack", c.name, f"install kubernetes-event-exporter (events → {p} Loki, cluster={c.name})",
            helm_install(ctx.kube(c.name), chart, ns, [EVENT_EXPORTER_VALUES], sets=[f"image.tag={tag}"],
                         set_json=[event_receivers(c.name, f"{base}/loki/api/v1/push")]),
            timeout=HELM_STEP_TIMEOUT, waits_for="the exporter's Deployment Ready"))
    return plan


def configmap_dashboards(part: Part, ctx: Context) -> PartInstall:
    """The dashboard sidecar's folder annotation and Grafana's folders from its subfolders, on the primary."""
    return PartInstall(values={ctx.topology.primary.name: [CONFIGMAP_DASHBOARDS_VALUES]})


CONFIGMAP_DASHBOARDS_VALUES = VALUES / "kube-prometheus-stack-configmap-dashboards.yaml"

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
    "app-metrics": app_metrics,
    "kube-bench": kubebench,
    "kube-state-metrics": kube_state_metrics,
    "events": events,
    "configmap-dashboards": configmap_dashboards,
    "tracing": tracing,
}


# The charts (stack/versions.yaml charts: keys) only a part installs: the plan names them only with their part.
PART_CHARTS: dict[str, tuple[str, ...]] = {
    "kube-bench": ("prometheus-pushgateway",),
    "events": ("kubernetes-event-exporter",),
}


def charts_of_absent_parts(topology: Topology) -> set[str]:
    """Chart keys of the parts the topology does not list."""
    return {key for part, keys in PART_CHARTS.items() if not topology.has(part) for key in keys}


def plan_parts(ctx: Context) -> PartInstall:
    """Every listed part's additions, merged in the topology's order."""
    total = PartInstall()
    for part in ctx.topology.parts.values():
        one = INSTALLS[part.name](part, ctx)
        for name, files in one.values.items():
            total.values.setdefault(name, []).extend(files)
        for name, sets in one.set_json.items():
            total.set_json.setdefault(name, []).extend(sets)
        total.after_primary += one.after_primary
        total.after_app += one.after_app
        for name, steps in one.after_remote.items():
            total.after_remote.setdefault(name, []).extend(steps)
        total.after_stack += one.after_stack
        for name, files in one.istio_overlays.items():
            total.istio_overlays.setdefault(name, []).extend(files)
        for key, value in one.kiali.items():
            total.kiali.setdefault(key, {}).update(value)
    return total
