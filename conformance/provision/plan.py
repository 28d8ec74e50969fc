"""The ordered steps of `up` and `down` as data: phase, cluster, argv, timeout, what each waits for.

Nothing here runs a command; run.py executes the steps and --dry-run prints them.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import yaml

from conformance.errors import ConfigError
from conformance.provision import dashboards, logs, network
from conformance.provision.parts import Context, plan_parts
from conformance.provision.clusters import (
    KindConfig, State, check_distinct_subnets, config_path, internal_kubeconfig, is_loopback,
    load_kind_config, metallb_pools, write_private,
)
from conformance.provision.steps import Facts, Step, When
from conformance.provision.versions import Chart, Versions, check_node_image
from conformance.stack import SERVICES_FILE, STACK_DIR, stack_namespace, stack_services
from conformance.topology import Cluster, Topology

VALUES = STACK_DIR / "values"
MANIFESTS = STACK_DIR / "manifests"
APP = STACK_DIR / "app"
ISTIO_NS = "istio-system"
APP_NS = "sample"
KIALI_OPERATOR_NS = "kiali-operator"
METALLB_NS = "metallb-system"
# kind waits for the control plane itself; this bounds it (slow CI: docs/troubleshooting.md#slow-ci-runs).
KIND_WAIT = "180s"
HELM_TIMEOUT = "10m"
HELM_STEP_TIMEOUT = 11 * 60.0


class StepError(Exception):
    """A Python action found something wrong; the message is the one-line diagnosis."""


@dataclass(frozen=True)
class Options:
    """What `up`/`down` were asked to do."""

    topology: Topology
    versions: Versions
    cache_dir: Path
    preload: bool = False
    offline: Path | None = None

    @property
    def loads_images(self) -> bool:
        """Images come from the local docker: --preload, and always offline (the nodes pull nothing)."""
        return self.preload or self.offline is not None


class Kube:
    """Commands against one kind cluster, always with its own kubeconfig and context."""

    def __init__(self, cluster: Cluster, state: State):
        self.cluster = cluster
        self.kubeconfig = str(state.client_kubeconfig(cluster.name))
        self.context = cluster.kube_context or f"kind-{cluster.name}"

    def kubectl(self, *args: str) -> tuple[str, ...]:
        return ("kubectl", "--kubeconfig", self.kubeconfig, "--context", self.context, *args)

    def helm(self, *args: str) -> tuple[str, ...]:
        return ("helm", "--kubeconfig", self.kubeconfig, "--kube-context", self.context, *args)

    def istioctl(self, *args: str) -> tuple[str, ...]:
        return ("istioctl", *args, "--kubeconfig", self.kubeconfig, "--context", self.context)


def helm_install(kube: Kube, chart: Chart, namespace: str, values: list[Path], sets: Sequence[str] = (),
                 set_json: Sequence[str] = ()) -> tuple[str, ...]:
    """Idempotent install of a pinned chart: `helm upgrade --install`, bounded by --wait --timeout."""
    # An OCI registry is no chart repository: helm takes oci://<registry path>/<name> and no --repo.
    where = [f"{chart.repo}/{chart.name}"] if chart.repo.startswith("oci://") else [chart.name, "--repo", chart.repo]
    argv = ["upgrade", "--install", chart.release, *where, "--version", chart.version,
            "--namespace", namespace, "--create-namespace"]
    for v in values:
        argv += ["--values", str(v)]
    for s in sets:
        argv += ["--set", s]
    for s in set_json:
        argv += ["--set-json", s]
    argv += ["--wait", "--timeout", HELM_TIMEOUT]
    return kube.helm(*argv)


def lb_address_step(phase: str, kube: Kube, namespace: str, service: str, fact: str, what: str) -> Step:
    """A bounded wait until MetalLB gives a LoadBalancer Service its address; the address becomes a fact."""
    return Step(phase, kube.cluster.name, f"address of {what}",
                kube.kubectl("get", "service", service, "--namespace", namespace,
                             "--output", "jsonpath={.status.loadBalancer.ingress[0].ip}"),
                timeout=180, retry=True, poll=3, capture=fact, ready=lambda out: bool(out.strip()),
                waits_for=f"MetalLB address for {namespace}/{service}")


def _exists(name: str) -> When:
    return When(f"cluster {name} does not exist yet", lambda f: not f.get(f"{name}.exists"))


def validate(opts: Options) -> dict[str, KindConfig]:
    """Checks that need no machine: node image in Istio's range, one kind config per cluster, distinct subnets."""
    check_node_image(opts.versions)
    topo = opts.topology
    kinds = [c for c in topo.clusters if c.provider == "kind"]
    if kinds and len(kinds) != len(topo.clusters):
        others = ", ".join(f"{c.name} ({c.provider})" for c in topo.clusters if c.provider != "kind")
        raise ConfigError(f"topology {topo.path}: the bring-up creates kind clusters only; {others} "
                          "must be brought up by other means (run the suites with that topology and no kind clusters)")
    configs = {c.name: load_kind_config(config_path(c)) for c in kinds}
    check_distinct_subnets(configs)
    if opts.offline is not None:
        dashboards.check_offline_dir(opts.offline, dashboards.declared())
    return configs


# -- up -------------------------------------------------------------------------------------------


def up_plan(opts: Options) -> list[Step]:
    """Every step of `up`, in order."""
    configs = validate(opts)
    state = State(opts.cache_dir)
    topo = opts.topology
    kube = {c.name: Kube(c, state) for c in topo.clusters}
    steps = clusters_phase(opts, configs, state, kube)
    if opts.loads_images:
        steps += preload_phase(opts)
    steps += network_phase(opts, configs, state, kube)
    steps += mesh_phase(opts, state, kube)
    steps += stack_phase(opts, state, kube)
    steps += app_phase(opts, kube)
    if opts.loads_images:
        steps += preload_check_phase(opts, kube)
    if opts.offline is None:
        return steps
    return offline_node_image(network.localize(steps, opts.offline), opts.versions.node_image)


def offline_node_image(steps: list[Step], image: str) -> list[Step]:
    """Offline, `kind create` must find the node image in the local docker (else it pulls it): check it first."""
    at = next((i for i, s in enumerate(steps) if s.title == "create kind cluster"), len(steps))
    check = Step("clusters", None, "node image in the local docker (offline: kind must not pull it)",
                 ("docker", "image", "inspect", "--format", "{{.Id}}", image), timeout=30)
    return [*steps[:at], check, *steps[at:]]


def clusters_phase(opts: Options, configs: dict[str, KindConfig], state: State, kube: dict[str, Kube]) -> list[Step]:
    """Find what exists, refuse clusters we do not own, create the rest in parallel, write kubeconfigs."""
    topo, image = opts.topology, opts.versions.node_image
    names = [c.name for c in topo.clusters]
    steps = [Step("clusters", None, "list existing kind clusters", ("kind", "get", "clusters"), timeout=30,
                  parse=lambda out, f: f.set("kind.clusters", out.split()))]
    for name in names:
        steps.append(Step("clusters", name, "ownership of an existing cluster",
                          action=_check_ownership(name, configs[name], image, state)))
    for name in names:
        cfg = configs[name]
        steps.append(Step(
            "clusters", name, "create kind cluster",
            ("kind", "create", "cluster", "--name", name, "--config", str(cfg.path), "--image", image,
             "--kubeconfig", str(state.host_kubeconfig(name)), "--wait", KIND_WAIT),
            timeout=420, when=_exists(name), parallel="create", waits_for="control plane Ready"))
    for name in names:
        steps += [
            Step("clusters", name, "control-plane container id",
                 ("docker", "inspect", "--format", "{{.Id}}", f"{name}-control-plane"), timeout=30,
                 capture=f"{name}.container_id"),
            Step("clusters", name, "write or verify ownership marker",
                 action=lambda f, n=name: _record_or_verify(n, configs[n], image, state, f)),
            Step("clusters", name, "control-plane address on the kind network",
                 ("docker", "inspect", "--format", "{{ .NetworkSettings.Networks.kind.IPAddress }}", f"{name}-control-plane"),
                 timeout=30, capture=f"{name}.control_plane_ip", ready=lambda out: bool(out.strip())),
            Step("clusters", name, "internal kubeconfig", ("kind", "get", "kubeconfig", "--internal", "--name", name),
                 timeout=30, secret=True, capture=f"{name}.kubeconfig_internal"),
            Step("clusters", name, "write kubeconfig (server = control-plane address)",
                 action=lambda f, n=name: write_private(state.kubeconfig(n), internal_kubeconfig(
                     str(f[f"{n}.kubeconfig_internal"]), n, str(f[f"{n}.control_plane_ip"])))),
            Step("clusters", name, "nodes Ready",
                 kube[name].kubectl("wait", "--for=condition=Ready", "nodes", "--all", "--timeout=180s"),
                 timeout=200, waits_for="all nodes Ready"),
        ]
    # One Istio network: pods reach the other cluster's pods and services directly,
    # so each node routes the other's ranges via its container (kind_provisioner.sh connect_kind_clusters).
    for name in names:
        for other in names:
            if other == name:
                continue
            for cidr in (configs[other].pod_subnet, configs[other].service_subnet):
                steps.append(Step("clusters", name, f"route to {other} {cidr}",
                                  ("docker", "exec", f"{name}-control-plane", "ip", "route", "replace", cidr,
                                   "via", f"@{{{other}.control_plane_ip}}"), timeout=30))
    return steps


def _check_ownership(name: str, cfg: KindConfig, image: str, state: State):
    def check(f: Facts) -> None:
        exists = name in (f.get("kind.clusters") or [])
        f.set(f"{name}.exists", exists)
        f.set(f"{name}.created", not exists)
        marker = state.read_marker(name)
        if not exists:
            state.marker(name).unlink(missing_ok=True)  # a stale marker from a cluster deleted by hand
            return
        if marker is None:
            raise StepError(f"a kind cluster named {name} exists that this tool did not create; delete it "
                            f"(kind delete cluster --name {name}) or list it with provider: existing in the topology")
        if marker.get("config_sha256") != cfg.sha256 or marker.get("image") != image:
            raise StepError(f"kind cluster {name} was created from another {cfg.path.name} or node image; "
                            "run `nox -s down` to delete it, then `nox -s up`")
    return check


def _record_or_verify(name: str, cfg: KindConfig, image: str, state: State, f: Facts) -> None:
    """Mark a cluster we just created; for a reused one, the marker must name this very container."""
    container = str(f[f"{name}.container_id"])
    if f.get(f"{name}.created"):
        state.write_marker(name, container, cfg.sha256, image)
        return
    marker = state.read_marker(name) or {}
    if marker.get("container_id") != container:
        raise StepError(f"kind cluster {name} was recreated outside this tool (its container is not the one we made); "
                        f"delete it (kind delete cluster --name {name}) or list it with provider: existing")


def preload_images(versions: Versions, profile: str = "promtail") -> list[str]:
    """The images --preload loads: the pinned ones (with the stack profile's) plus the suites' log canary image."""
    images = list(versions.images_for(profile))
    # The suites' log canary image, when stack/services.yaml names one.
    canary = (yaml.safe_load(SERVICES_FILE.read_text()).get("canary") or {}).get("image")
    if canary and canary not in images:
        images.append(canary)
    return images


def preload_phase(opts: Options) -> list[Step]:
    """Load the pinned images from the local docker into every node (rate limits, air-gapped runs)."""
    images = preload_images(opts.versions, opts.topology.profile)
    steps = [Step("preload", None, "images present in the local docker",
                  ("docker", "image", "inspect", "--format", "{{.Id}}", *images), timeout=60)]
    for c in opts.topology.clusters:
        steps.append(Step("preload", c.name, "load images into the nodes",
                          ("kind", "load", "docker-image", "--name", c.name, *images), timeout=900,
                          parallel="preload", waits_for=f"{len(images)} images loaded"))
    return steps


# Every container and init container of every pod, one image per line.
_POD_IMAGES = ('jsonpath={range .items[*]}{range .spec.initContainers[*]}{.image}{"\\n"}{end}'
               '{range .spec.containers[*]}{.image}{"\\n"}{end}{end}')


def preload_check_phase(opts: Options, kube: dict[str, Kube]) -> list[Step]:
    """After bring-up: the images the charts actually rendered are all in the preload list (no drift)."""
    images = preload_images(opts.versions, opts.topology.profile)
    return [Step("preload", c.name, "every image the pods run was preloaded",
                 kube[c.name].kubectl("get", "pods", "--all-namespaces", "--output", _POD_IMAGES), timeout=60,
                 parse=lambda out, f, n=c.name: check_preloaded(n, out.split(), images))
            for c in opts.topology.clusters]


def check_preloaded(cluster: str, running: list[str], preloaded: list[str]) -> None:
    """Refuse images the pods run that --preload did not load: on an air-gapped node they cannot start."""
    loaded = {normalize_image(i) for i in preloaded}
    missing = sorted({i for i in running if normalize_image(i) not in loaded})
    if missing:
        raise StepError(f"pods on {cluster} run images --preload did not load: {', '.join(missing)}; "
                        f"the charts render other images than {VERSIONS_NAME} lists; fix its images/apps")


VERSIONS_NAME = "stack/versions.yaml"


def normalize_image(ref: str) -> str:
    """The reference containerd stores: docker.io/library/ for bare names, :latest when untagged."""
    name, digest = (ref.split("@", 1) + [""])[:2]
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = "docker.io/" + name
    if name.count("/") == 1 and name.startswith("docker.io/"):
        name = "docker.io/library/" + name.removeprefix("docker.io/")
    if ":" not in name.rsplit("/", 1)[-1] and not digest:
        name += ":latest"
    return name + (f"@{digest}" if digest else "")


def network_phase(opts: Options, configs: dict[str, KindConfig], state: State, kube: dict[str, Kube]) -> list[Step]:
    """MetalLB on every cluster with its own slice of the kind network."""
    names = [c.name for c in opts.topology.clusters]
    metallb = opts.versions.metallb
    steps = [Step("network", None, "kind network subnets",
                  ("docker", "network", "inspect", "kind", "--format", "{{json .IPAM.Config}}"), timeout=30,
                  parse=lambda out, f: [f.set(f"{n}.metallb_pool", p) for n, p in metallb_pools(out, names).items()])]
    for name in names:
        pool_file = state.file(name, "metallb-pool.yaml")
        steps += [
            Step("network", name, "install MetalLB",
                 helm_install(kube[name], metallb, METALLB_NS, [VALUES / "metallb.yaml"]),
                 timeout=HELM_STEP_TIMEOUT, waits_for="MetalLB controller and speaker Ready"),
            Step("network", name, "render MetalLB address pool",
                 action=lambda f, n=name, p=pool_file: _render_pool(p, str(f[f"{n}.metallb_pool"]))),
            # The pool's validating webhook answers only once the controller serves it.
            Step("network", name, "apply MetalLB address pool", kube[name].kubectl("apply", "--filename", str(pool_file)),
                 timeout=120, retry=True, poll=5, waits_for="MetalLB webhook accepting the pool"),
        ]
    return steps


def _render_pool(dest: Path, pool: str) -> None:
    docs = list(yaml.safe_load_all((MANIFESTS / "metallb-pool.yaml").read_text()))
    docs[0]["spec"]["addresses"] = [pool]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def _istio_network() -> str:
    doc = yaml.safe_load((MANIFESTS / "istio-primary.yaml").read_text())
    return doc["spec"]["values"]["global"]["network"]


def mesh_phase(opts: Options, state: State, kube: dict[str, Kube]) -> list[Step]:
    """Istio primary-remote as istio.io documents it, with a non-loopback remote secret."""
    topo = opts.topology
    p = topo.primary.name
    kp = kube[p]
    network = _istio_network()
    overlays = plan_parts(Context(topo, opts.versions, lambda name: kube[name], lb_address_step)).istio_overlays.get(p, [])
    steps = [
        Step("mesh", p, "install istiod (primary, externalIstiod)",
             kp.istioctl("install", "-y", "--filename", str(MANIFESTS / "istio-primary.yaml"),
                         *(a for f in overlays for a in ("--filename", str(f))),
                         "--set", f"values.global.multiCluster.clusterName={p}"),
             timeout=600, waits_for="istiod Ready"),
        Step("mesh", p, "install east-west gateway",
             kp.istioctl("install", "-y", "--filename", str(MANIFESTS / "istio-eastwest.yaml")),
             timeout=600, waits_for="istio-eastwestgateway Ready"),
        lb_address_step("mesh", kp, ISTIO_NS, "istio-eastwestgateway", f"{p}.eastwest_ip", "the east-west gateway"),
        Step("mesh", p, "expose istiod through the east-west gateway",
             kp.kubectl("apply", "--filename", str(MANIFESTS / "istio-expose-istiod.yaml")), timeout=60),
    ]
    for remote in topo.remotes:
        r = remote.name
        kr = kube[r]
        secret_file = state.file(r, "istio-remote-secret.yaml")
        steps += [
            Step("mesh", r, "istio-system namespace", kr.kubectl("create", "namespace", ISTIO_NS), timeout=30,
                 tolerate=("AlreadyExists",)),
            Step("mesh", r, "name the primary as control plane",
                 kr.kubectl("annotate", "namespace", ISTIO_NS, f"topology.istio.io/controlPlaneClusters={p}", "--overwrite"),
                 timeout=30),
            Step("mesh", r, "install Istio remote profile",
                 kr.istioctl("install", "-y", "--filename", str(MANIFESTS / "istio-remote.yaml"),
                             "--set", f"values.istiodRemote.injectionPath=/inject/cluster/{r}/net/{network}",
                             "--set", f"values.global.remotePilotAddress=@{{{p}.eastwest_ip}}"),
                 timeout=600, waits_for="remote webhook and config"),
            # Never the kubeconfig's loopback address: istiod runs in the other cluster (istio/istio#58047).
            Step("mesh", r, "remote secret for the primary's istiod",
                 kr.istioctl("create-remote-secret", "--name", r, "--server", f"https://@{{{r}.control_plane_ip}}:6443"),
                 timeout=60, secret=True, stdout_to=secret_file),
            Step("mesh", r, "remote secret points at a non-loopback API server",
                 action=lambda f, path=secret_file: check_remote_secret(path)),
            Step("mesh", p, f"apply {r}'s remote secret", kp.kubectl("apply", "--filename", str(secret_file)), timeout=60),
            remote_synced_step(kp, r),
        ]
    return steps


# istiod's first sync of a remote: its informers list every Service, Pod and EndpointSlice there.
REMOTE_SYNC_TIMEOUT = 300.0


def remote_synced_step(kp: Kube, remote: str) -> Step:
    """A bounded wait, backing off, until every istiod on the primary reports the remote `synced`."""
    return Step("mesh", kp.cluster.name, f"istiod synced with {remote}", kp.istioctl("remote-clusters"),
                timeout=REMOTE_SYNC_TIMEOUT, retry=True, poll=1, max_poll=15,
                ready=lambda out: remote_cluster_state(out, remote) == "synced",
                state=lambda out: f"istioctl remote-clusters shows {remote} {remote_cluster_state(out, remote)}",
                waits_for=f"istioctl remote-clusters to show {remote} synced")


def remote_cluster_state(out: str, remote: str) -> str:
    """`synced` when every istiod lists the remote synced; else what it shows (docs/real-stack.md#remote-clusters)."""
    lines = out.splitlines()
    header = next((i for i, line in enumerate(lines) if line.split()[:1] == ["NAME"]), None)
    if header is None or "STATUS" not in lines[header]:
        return f"not listed (no NAME ... STATUS table: {out.strip()[:80]!r})"
    status_at, istiod_at = lines[header].index("STATUS"), lines[header].find("ISTIOD")
    rows = [line for line in lines[header + 1:] if line.split()[:1] == [remote]]
    if not rows:
        return "not listed (istiod has not read its remote secret yet)"
    states = [(row[status_at:istiod_at if istiod_at > 0 else None].strip() or "?",
               row[istiod_at:].strip() if istiod_at > 0 else "") for row in rows]
    pending = [f"{st} on {istiod}" if istiod else st for st, istiod in states if st != "synced"]
    return ", ".join(pending) if pending else "synced"


def check_remote_secret(path: Path) -> None:
    """Refuse an Istio remote secret whose kubeconfig server is a loopback address.

    See docs/troubleshooting.md#remote-secret-points-at-a-loopback-address.
    """
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc or doc.get("kind") != "Secret":
            continue
        data = dict(doc.get("stringData") or {})
        for k, v in (doc.get("data") or {}).items():
            data[k] = base64.b64decode(v).decode()
        for value in data.values():
            kubeconfig = yaml.safe_load(value) or {}
            for c in kubeconfig.get("clusters", []):
                server = c.get("cluster", {}).get("server", "")
                host = urlparse(server).hostname or ""
                if not host or is_loopback(host):
                    raise StepError(f"the remote secret's API server is {server or 'missing'}, which istiod in the "
                                    "other cluster cannot reach; pass --server with the control-plane address")
            return
    raise StepError(f"{path.name}: istioctl create-remote-secret printed no Secret")


def stack_phase(opts: Options, state: State, kube: dict[str, Kube]) -> list[Step]:
    """The monitoring stack with the corrections (stack/values, stack/manifests)."""
    topo, charts = opts.topology, opts.versions.charts
    ns = stack_namespace()
    svc = stack_services(profile=topo.profile)
    p = topo.primary.name
    kp = kube[p]
    kps, kiali = charts["kube-prometheus-stack"], charts["kiali-operator"]
    parts = plan_parts(Context(topo, opts.versions, lambda name: kube[name], lb_address_step, file=state.file))
    grafana_secret = state.file(p, "grafana-admin-secret.yaml")
    steps = [Step("stack", c.name, "monitoring namespace (not injected)",
                  kube[c.name].kubectl("apply", "--filename", str(MANIFESTS / "namespaces.yaml")), timeout=60)
             for c in topo.clusters]
    steps += [
        Step("stack", p, "Grafana admin Secret (generated, never printed)",
             action=lambda f: write_grafana_secret(grafana_secret, ns, f)),
        Step("stack", p, "apply Grafana admin Secret", kp.kubectl("apply", "--filename", str(grafana_secret)), timeout=60),
        *logs.primary_steps(topo, opts.versions, kp, helm_install),
    ]
    kps_values = [VALUES / "kube-prometheus-stack.yaml", *logs.kps_values(topo)]
    if opts.offline is not None:
        declared = dashboards.declared()
        cm_file = state.file(p, "grafana-dashboards.yaml")
        overlay = state.file(p, "grafana-dashboards-offline.yaml")
        kps_values.append(overlay)
        steps += [
            Step("stack", p, f"dashboards from {opts.offline} (offline)", action=lambda f: (
                cm_file.parent.mkdir(parents=True, exist_ok=True),
                cm_file.write_text(dashboards.offline_configmaps(opts.offline, declared, ns)),
                overlay.write_text(dashboards.offline_overlay(declared)))),
            # Server-side: dashboards exceed the 256 KiB last-applied annotation.
            Step("stack", p, "apply dashboard ConfigMaps",
                 kp.kubectl("apply", "--server-side", "--filename", str(cm_file)), timeout=60),
        ]
    kps_values += parts.values.get(p, [])
    steps += [
        Step("stack", p, "install kube-prometheus-stack (receiver, Grafana" + (", Alertmanager" if topo.has("alerting") else "") + ")",
             helm_install(kp, kps, ns, kps_values, sets=[f"prometheus.prometheusSpec.externalLabels.cluster={p}"],
                          set_json=parts.set_json.get(p, [])),
             timeout=HELM_STEP_TIMEOUT, waits_for="operator, Prometheus and Grafana Ready"),
        *parts.after_primary,
        *dashboard_checks(kp, ns, svc["grafana"].service, svc["grafana"].container),
        lb_address_step("stack", kp, ns, svc["loki"].service, f"{p}.loki_ip", "Loki"),
        lb_address_step("stack", kp, ns, svc["prometheus"].service, f"{p}.prometheus_ip", "Prometheus"),
        Step("stack", p, "istiod ServiceMonitor and Envoy PodMonitor",
             kp.kubectl("apply", "--filename", str(MANIFESTS / "istiod-servicemonitor.yaml"),
                        "--filename", str(MANIFESTS / "envoy-podmonitor.yaml")), timeout=60),
    ]
    for remote in topo.remotes:
        r = remote.name
        kr = kube[r]
        steps += [
            *logs.remote_steps(topo, opts.versions, r, kr, helm_install),
            Step("stack", r, "install kube-prometheus-stack (Prometheus remote-writing to the primary)",
                 helm_install(kr, kps, ns, [VALUES / "kube-prometheus-stack-remote.yaml", *parts.values.get(r, [])],
                              sets=[f"prometheus.prometheusSpec.externalLabels.cluster={r}"],
                              set_json=["prometheus.prometheusSpec.remoteWrite=" + json.dumps(
                                  [{"url": f"http://@{{{p}.prometheus_ip}}:{svc['prometheus'].port}/api/v1/write"}]),
                                  *parts.set_json.get(r, [])]),
                 timeout=HELM_STEP_TIMEOUT, waits_for="operator and Prometheus Ready"),
            *parts.after_remote.get(r, []),
            Step("stack", r, "Envoy PodMonitor", kr.kubectl("apply", "--filename", str(MANIFESTS / "envoy-podmonitor.yaml")),
                 timeout=60),
        ]
    steps += parts.after_stack
    steps.append(Step("stack", p, "install kiali-operator",
                      helm_install(kp, kiali, KIALI_OPERATOR_NS, [VALUES / "kiali-operator.yaml"]),
                      timeout=HELM_STEP_TIMEOUT, waits_for="kiali-operator Ready"))
    for remote in topo.remotes:
        r = remote.name
        kr = kube[r]
        secret_file = state.file(p, f"kiali-remote-secret-{r}.yaml")
        steps += [
            Step("stack", r, "Kiali service account and token",
                 kr.kubectl("apply", "--filename", str(MANIFESTS / "kiali-remote.yaml")), timeout=60),
            Step("stack", r, "Kiali token issued",
                 kr.kubectl("get", "secret", "kiali-service-account-token", "--namespace", ns, "--output", "json"),
                 timeout=60, retry=True, poll=2, secret=True, capture=f"{r}.kiali_token_json",
                 ready=lambda out: bool((json.loads(out or "{}").get("data") or {}).get("token")),
                 waits_for="token controller fills the Secret"),
            Step("stack", p, f"Kiali remote secret for {r}",
                 action=lambda f, r=r, path=secret_file: write_kiali_remote_secret(path, r, ns, f)),
            # Before the CR: the operator mounts remote secrets only when it reconciles.
            Step("stack", p, f"apply Kiali remote secret for {r}", kp.kubectl("apply", "--filename", str(secret_file)),
                 timeout=60),
        ]
    kiali_cr = state.file(p, "kiali.yaml")
    steps += [
        Step("stack", p, "render Kiali CR" + "".join(f" with {k}.{sub}" for k, v in parts.kiali.items() for sub in v),
             action=lambda f: _render_kiali(kiali_cr, p, parts.kiali)),
        Step("stack", p, "apply Kiali CR", kp.kubectl("apply", "--filename", str(kiali_cr)), timeout=60),
        Step("stack", p, "Kiali deployed",
             kp.kubectl("wait", "kiali/kiali", "--namespace", ns, "--for=condition=Successful", "--timeout=600s"),
             timeout=620, waits_for="kiali-operator reconciled the CR"),
        Step("stack", p, "Kiali Ready",
             kp.kubectl("rollout", "status", f"deployment/{svc['kiali'].service}", "--namespace", ns, "--timeout=300s"),
             timeout=320, waits_for="kiali Deployment available"),
    ]
    return steps


def dashboard_checks(kube: Kube, namespace: str, deployment: str, container: str) -> list[Step]:
    """Every declared dashboard is a file with panels in the Grafana container (a failed download is empty)."""
    steps = []
    for d in dashboards.declared():
        steps.append(Step(
            "stack", kube.cluster.name, f"dashboard {d.folder}/{d.key} provisioned with panels",
            kube.kubectl("exec", f"deployment/{deployment}", "--namespace", namespace, "--container", container,
                         "--", "cat", d.path),
            timeout=60, parse=lambda out, f, d=d: _check_provisioned(out, d)))
    return steps


def _check_provisioned(text: str, d: dashboards.Dashboard) -> None:
    problem = dashboards.provisioned_problem(text, d)
    if problem:
        raise StepError(f"{d.path} in Grafana: {problem}; grafana.com dashboard {d.gnet_id} "
                         f"revision {d.revision} did not provision")




def write_grafana_secret(path: Path, namespace: str, f: Facts) -> None:
    """Generate the admin password once; reused on later runs so a reused Grafana keeps it."""
    cred = stack_services()["grafana"].credentials_secret
    if path.is_file():
        doc = yaml.safe_load(path.read_text())
        f.add_secret(doc["stringData"][cred.password_key])
        return
    password = secrets.token_urlsafe(24)
    f.add_secret(password)
    doc = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"name": cred.name, "namespace": namespace},
           "stringData": {cred.user_key: "admin", cred.password_key: password}}
    write_private(path, yaml.safe_dump(doc, sort_keys=False))


def write_kiali_remote_secret(path: Path, remote: str, namespace: str, f: Facts) -> None:
    """The Secret Kiali's operator autodetects: one kubeconfig whose only cluster is named like Istio's cluster."""
    token_secret = json.loads(str(f[f"{remote}.kiali_token_json"]))
    data = token_secret["data"]
    token = base64.b64decode(data["token"]).decode()
    f.add_secret(token)
    server = f"https://{f[f'{remote}.control_plane_ip']}:6443"
    if is_loopback(urlparse(server).hostname or ""):
        raise StepError(f"Kiali's remote server for {remote} would be {server}, unreachable from the primary")
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": remote,
        "clusters": [{"name": remote, "cluster": {"server": server, "certificate-authority-data": data["ca.crt"]}}],
        "users": [{"name": remote, "user": {"token": token}}],
        "contexts": [{"name": remote, "context": {"cluster": remote, "user": remote}}],
    }
    doc = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"name": f"kiali-remote-cluster-secret-{remote}", "namespace": namespace,
                        "labels": {"kiali.io/multiCluster": "true"},
                        "annotations": {"kiali.io/cluster": remote}},
           "stringData": {remote: yaml.safe_dump(kubeconfig, sort_keys=False)}}
    write_private(path, yaml.safe_dump(doc, sort_keys=False))


def _render_kiali(dest: Path, primary: str, extra: dict | None = None) -> None:
    doc = yaml.safe_load((MANIFESTS / "kiali.yaml").read_text())
    doc["spec"]["kubernetes_config"]["cluster_name"] = primary
    for key, value in (extra or {}).items():  # an optional part's fields (external_services.tracing)
        doc["spec"].setdefault(key, {}).update(value)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(doc, sort_keys=False))


def app_phase(opts: Options, kube: dict[str, Kube]) -> list[Step]:
    """The sample app: server on the primary, Service everywhere; on the remotes the traffic generator
    (stopped) and `sleep`, a permanent injected workload so each remote has an Envoy to scrape."""
    topo = opts.topology
    p = topo.primary.name
    steps = []
    for c in topo.clusters:
        files = ["namespace.yaml", "service.yaml"] + (["server.yaml"] if c.is_primary else ["traffic.yaml", "sleep.yaml"])
        argv = ["apply"]
        for name in files:
            argv += ["--filename", str(APP / name)]
        steps.append(Step("app", c.name, "sample app (injected namespace)", kube[c.name].kubectl(*argv), timeout=60))
    steps.append(Step("app", p, "sample server Ready",
                      kube[p].kubectl("rollout", "status", "deployment/helloworld", "--namespace", APP_NS, "--timeout=300s"),
                      timeout=320, waits_for="helloworld with its sidecar"))
    for remote in topo.remotes:
        steps.append(Step("app", remote.name, "sleep Ready (the remote's Envoy)",
                          kube[remote.name].kubectl("rollout", "status", "deployment/sleep", "--namespace", APP_NS,
                                                    "--timeout=300s"),
                          timeout=320, waits_for="sleep with its sidecar"))
    # Optional parts' additions that need the app's namespace (app-metrics).
    steps += plan_parts(Context(topo, opts.versions, lambda name: kube[name], lb_address_step)).after_app
    return steps


# -- down -----------------------------------------------------------------------------------------


def down_plan(opts: Options) -> list[Step]:
    """Delete only the kind clusters whose marker this tool wrote and whose container is still the one it made."""
    state = State(opts.cache_dir)
    names = [c.name for c in opts.topology.clusters if c.provider == "kind"]
    steps = [Step("down", None, "list existing kind clusters", ("kind", "get", "clusters"), timeout=30,
                  parse=lambda out, f: f.set("kind.clusters", out.split()))]
    for name in names:
        ours = When(f"{name} carries our marker", lambda f, n=name: bool(f.get(f"{n}.ours")))
        steps += [
            Step("down", name, "control-plane container id",
                 ("docker", "inspect", "--format", "{{.Id}}", f"{name}-control-plane"), timeout=30,
                 capture=f"{name}.container_id", tolerate=("No such object", "No such container"),
                 when=When(f"{name} exists", lambda f, n=name: n in (f.get("kind.clusters") or []))),
            Step("down", name, "check our marker", action=lambda f, n=name: _mark_ours(n, state, f)),
            Step("down", name, "delete kind cluster",
                 ("kind", "delete", "cluster", "--name", name, "--kubeconfig", str(state.host_kubeconfig(name))),
                 timeout=180, when=ours, parallel="delete"),
        ]
    for name in names:
        steps.append(Step("down", name, "forget cluster state", when=When(f"{name} was deleted", lambda f, n=name: bool(f.get(f"{n}.ours"))),
                          action=lambda f, n=name: _forget(state, n)))
    return steps


def _mark_ours(name: str, state: State, f: Facts) -> None:
    marker = state.read_marker(name)
    exists = name in (f.get("kind.clusters") or [])
    ours = bool(exists and marker and marker.get("container_id") == f.get(f"{name}.container_id"))
    f.set(f"{name}.ours", ours)
    if exists and not ours:
        f.set(f"{name}.skipped", "not created by this tool (no matching marker); left alone")


def _forget(state: State, name: str) -> None:
    d = state.dir(name)
    if d.is_dir():
        for p in sorted(d.rglob("*"), reverse=True):
            p.unlink() if p.is_file() or p.is_symlink() else p.rmdir()
        d.rmdir()
