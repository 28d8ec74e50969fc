"""The proving ground on real control planes: two kube-apiservers (oke, workstation) in a network namespace.

Each cluster is tests/real/kube.py's etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok,
at 10.77.1.1 (oke) and 10.77.2.1 (workstation) on the namespace's `lo`. What the bring-up applies is applied
server-side with strict field validation (CRDs built from tests/provision/schemas). The stack's services are
Services with selectors over hostNetwork pods that kwok runs on the cluster's node, so the pod IP is the
node's and the kube-controller-manager's endpoints controller writes the Endpoints the API server's service
proxy dials; a relay on that address carries the bytes to the real Prometheus pair and the fakes on loopback.
The node agent plays what kwok does not: a container's stdout (into the CRI-format file kwok serves as its
log) and Promtail's kubernetes-pods job (the cluster's FakePromtail ships the same lines). The mesh is
tests/proving_kube.py's SampleMesh: istiod's job scrapes a FakeIstiod, and the traffic generator's sidecar is a
target of the remote's Envoy pool while its Deployment, scaled on the real remote API server, has ready pods
(the deployment and replica set controllers' work, kwok running the pods).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.dynamic import DynamicClient

from conformance.probes.kiali.remote_secrets import REMOTE_SECRET_LABEL
from conformance.provision.phases.stack import write_kiali_remote_secret
from conformance.provision.steps import Facts
from conformance.core.manifests import traffic_generator
from conformance.core.stack import stack_services
from tests.fakes.kiali import FakeKiali
from tests.fakes.loki import FakeLoki
from tests.fakes.promtail import FakePromtail
from tests.proving_ground import PrometheusPair
from tests.proving_kube import (GRAFANA_POD, GRAFANA_SECRET, STACK_PODS, EnvoyTargets, SampleMesh, kps_prometheus_spec,
                                sample_mesh, stack_prometheus_pair)
from tests.proving_stack import GRAFANA_PASSWORD, kiali_spec, start_grafana
from tests.real.crds import all_crds
from tests.real.kube import ControlPlane, LogRule, write_kubeconfig, kubeconfig_entry
from tests.real.netns import NetNamespace
from tests.real.relay import Relay
from tests.suite_runner import write_topology

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = REPO / "stack" / "manifests"
APP = REPO / "stack" / "app"
ADDRESSES = {"oke": "10.77.1.1", "workstation": "10.77.2.1"}
FIELD_MANAGER = "monitoring-conformance"
# What the bring-up applies to each cluster (conformance/provision/phases/stack.py stack_phase, app_phase) that this
# ground can hold: everything but what Helm and istioctl install.
APPLIED = {
    "oke": [MANIFESTS / "namespaces.yaml", MANIFESTS / "istiod-servicemonitor.yaml", MANIFESTS / "envoy-podmonitor.yaml",
            APP / "namespace.yaml", APP / "service.yaml", APP / "server.yaml"],
    "workstation": [MANIFESTS / "namespaces.yaml", MANIFESTS / "envoy-podmonitor.yaml", MANIFESTS / "kiali-remote.yaml",
                    APP / "namespace.yaml", APP / "service.yaml", APP / "traffic.yaml"],
}


def cri_line(text: str, when: float | None = None) -> str:
    """One line as containerd writes it under /var/log/pods (what kubelet and kwok read back)."""
    stamp = dt.datetime.fromtimestamp(when or time.time(), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    return f"{stamp} stdout F {text}\n"


def echoed(pod: dict) -> dict[str, str]:
    """What each container prints: the quoted text of an `sh -c "echo '...'"` command, else nothing."""
    out = {}
    for c in pod["spec"]["containers"]:
        script = " ".join([*(c.get("command") or []), *(c.get("args") or [])])
        m = re.search(r"echo '([^']*)'", script)
        if m:
            out[c["name"]] = m.group(1)
    return out


@dataclass
class Backend:
    """A stack service's pod: hostNetwork on the cluster's node, its container port relayed to a loopback server."""

    service: str
    pod: str
    labels: dict[str, str]
    port: int  # the container's (and the relay's) port
    target: str  # http://127.0.0.1:N
    service_port: int
    containers: list[str] = field(default_factory=lambda: ["main"])
    namespace: str = ""  # the stack's (stack/services.yaml) when empty
    service_labels: dict[str, str] = field(default_factory=dict)  # what the chart puts on the Service
    external_ips: list[str] = field(default_factory=list)  # names="other": the primary Prometheus's address for remotes
    port_name: str = "http"  # the Service's port name (a discovery rule may ask for its chart's)


@dataclass
class RealKubeGround:
    """Both control planes, the servers behind them, and the kubeconfig/topology the suites use."""

    folder: Path
    ns: NetNamespace
    planes: dict[str, ControlPlane]
    pair: PrometheusPair
    loki: FakeLoki
    grafana: Any
    kiali: FakeKiali
    promtails: dict[str, FakePromtail] = field(default_factory=dict)
    relays: list[Relay] = field(default_factory=list)
    agent: "NodeAgent | None" = None
    exits: ExitStack = field(default_factory=ExitStack)  # the Prometheus pair, its exporters and the mesh's fakes
    mesh: SampleMesh | None = None
    sidecars: EnvoyTargets | None = None  # the traffic generator's sidecar while its Deployment has ready pods
    startup_seconds: dict[str, float] = field(default_factory=dict)
    names: str = "bring-up"  # or "other": the stack under a user's own release names (OTHER_NAMES)

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    def topology(self, name: str = "topology.yaml", kubeconfig: Path | None = None) -> Path:
        clusters = [{"name": c, "role": "primary" if c == "oke" else "remote", "provider": "existing",
                     "context": f"kind-{c}", "kubeconfig": str(kubeconfig or self.kubeconfig)} for c in self.planes]
        return write_topology(self.folder, clusters, name)

    def api(self, cluster: str) -> kclient.ApiClient:
        return kconfig.new_client_from_config(str(self.kubeconfig), context=f"kind-{cluster}")

    def stop(self) -> None:
        if self.sidecars:
            self.sidecars.stop()
        if self.agent:
            self.agent.stop()
        for r in self.relays:
            r.stop()
        for p in self.planes.values():
            p.stop()
        for p in self.promtails.values():
            p.stop()
        for s in (self.kiali, self.grafana, self.loki):
            s.stop()
        self.exits.close()


def apply(api: kclient.ApiClient, docs: list[dict]) -> None:
    """Server-side apply with fieldValidation=Strict, as `kubectl apply --server-side` sends it."""
    dyn = DynamicClient(api)
    for doc in docs:
        if not doc:
            continue
        resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        meta = doc["metadata"]
        path = resource.path(name=meta["name"], namespace=meta.get("namespace") if resource.namespaced else None)
        query = urlencode({"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"})
        r = api.call_api("PATCH", f"{api.configuration.host}{path}?{query}", body=json.dumps(doc), _request_timeout=30,
                         header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"})
        r.read()
        if r.status >= 400:
            raise kclient.ApiException(http_resp=r)


def load(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def wait_for(what: str, probe, timeout: float = 60.0) -> Any:
    deadline, delay, last = time.monotonic() + timeout, 0.1, None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except kclient.ApiException as e:
            last = f"{e.status} {e.reason}"
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    raise TimeoutError(f"{what} not done after {timeout} s (last: {last})")


def backend_pod(b: Backend, namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": b.pod, "namespace": namespace, "labels": b.labels},
            "spec": {"hostNetwork": True, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": name, "image": "registry.example/stand-in:1",
                                     **({"ports": [{"containerPort": b.port, "name": "http"}]} if i == 0 else {})}
                                    for i, name in enumerate(b.containers)]}}


def service(name: str, namespace: str, port: int, target: int, selector: dict[str, str],
            labels: dict[str, str] | None = None, external_ips: list[str] | None = None, port_name: str = "http") -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace,
                                                                 **({"labels": labels} if labels else {})},
            "spec": {"selector": selector, "ports": [{"name": port_name, "port": port, "targetPort": target}],
                     **({"externalIPs": external_ips} if external_ips else {})}}


class NodeAgent:
    """The containers' stdout and Promtail's kubernetes-pods job, for pods kwok has started."""

    def __init__(self, ground: RealKubeGround, poll: float = 0.3) -> None:
        self.ground = ground
        self.poll = poll
        self.seen: dict[str, set[str]] = {c: set() for c in ground.planes}
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._apis = {c: kclient.CoreV1Api(ground.api(c)) for c in ground.planes}
        self._thread = threading.Thread(target=self._loop, name="node-agent", daemon=True)

    def start(self) -> "NodeAgent":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for cluster, core in self._apis.items():
                try:
                    self._sync(cluster, core)
                except Exception as e:  # noqa: BLE001 - reported by the test, never swallowed silently
                    self.errors.append(e)
            self._stop.wait(self.poll)

    def _sync(self, cluster: str, core: kclient.CoreV1Api) -> None:
        plane = self.ground.planes[cluster]
        for pod in core.list_pod_for_all_namespaces(_request_timeout=10).items:
            if pod.metadata.uid in self.seen[cluster] or pod.status.phase != "Running":
                continue
            self.seen[cluster].add(pod.metadata.uid)
            raw = core.api_client.sanitize_for_serialization(pod)
            ns, name = pod.metadata.namespace, pod.metadata.name
            for container, line in echoed(raw).items():
                with plane.log_file(ns).open("a") as f:
                    f.write(cri_line(line))
                self.ground.promtails[cluster].emit(line, ns, name, container, (pod.metadata.labels or {}).get("app", ""))


class ReadyReplicas:
    """A Deployment's ready replicas as the real API server reports them (its pods Running on kwok); a read that
    fails keeps the last answer and is kept in `errors` (404: no such Deployment, None)."""

    def __init__(self, api: kclient.ApiClient) -> None:
        self.apps = kclient.AppsV1Api(api)
        self.last: dict[tuple[str, str], int | None] = {}
        self.errors: list[BaseException] = []

    def deployment_replicas(self, namespace: str, name: str) -> int | None:
        try:
            status = self.apps.read_namespaced_deployment_status(name, namespace, _request_timeout=5).status
            self.last[(namespace, name)] = status.ready_replicas or 0
        except kclient.ApiException as e:
            if e.status != 404:
                self.errors.append(e)
            else:
                self.last[(namespace, name)] = None
        except Exception as e:  # noqa: BLE001 - the server stopped or unreachable: kept, as the node agent keeps its
            self.errors.append(e)
        return self.last.get((namespace, name))


def new_namespace() -> NetNamespace:
    return NetNamespace(list(ADDRESSES.values()))


def start_realkube_ground(folder: Path, ns: NetNamespace, grafana_log: str | None = None,
                          log_rules: dict[str, list[LogRule]] | None = None, names: str = "bring-up") -> RealKubeGround:
    """Inside ns: the servers, both control planes, what the bring-up applies; `with ground.ns:` to reach them.

    log_rules: files kwok serves as some pods' logs (current and previous), per cluster, fixed at kwok's start.
    names="other": the stack's objects under a user's own release names (OTHER_NAMES), found by discovery.
    """
    with ns:
        return _start(folder, ns, grafana_log, log_rules or {}, names)


def _start(folder: Path, ns: NetNamespace, grafana_log: str | None, log_rules: dict[str, list[LogRule]],
           names: str = "bring-up") -> RealKubeGround:
    folder.mkdir(parents=True, exist_ok=True)
    exits = ExitStack()
    try:
        mesh = exits.enter_context(sample_mesh(folder / "mesh"))
        pair = exits.enter_context(stack_prometheus_pair(folder / "prometheus", mesh=mesh))  # every job the stack scrapes
    except BaseException:
        exits.close()
        raise
    loki = FakeLoki().start()
    grafana = start_grafana(pair, loki, log_path=folder / "grafana-fake.log")
    kiali = FakeKiali(kiali_spec()).start()
    planes = {c: ControlPlane(c, ip, folder / c) for c, ip in ADDRESSES.items()}
    ground = RealKubeGround(folder, ns, planes, pair, loki, grafana, kiali, exits=exits, names=names, mesh=mesh)
    try:
        for c in planes:
            ground.promtails[c] = FakePromtail(f"{loki.url}/loki/api/v1/push", folder / f"{c}-unused.log",
                                               external_labels={"cluster": c}).start()
        grafana_file = folder / "oke" / "logs" / "grafana.log"
        grafana_file.parent.mkdir(parents=True, exist_ok=True)
        text = grafana_log if grafana_log is not None else "".join(line + "\n" for line in grafana.log_lines)
        grafana_file.write_text("".join(cri_line(line) for line in text.splitlines()))
        grafana_ns = "grafana" if names == "other" else "monitoring"
        planes["oke"].log_rules.append(LogRule(grafana_ns, grafana_file, pod=GRAFANA_POD, container="grafana"))
        for c, rules in log_rules.items():
            planes[c].log_rules.extend(rules)
        for c, plane in planes.items():
            started = time.monotonic()
            plane.start()
            ground.startup_seconds[c] = time.monotonic() - started
        write_kubeconfig(ground.kubeconfig, [kubeconfig_entry(c, p.server, p.pki, "admin") for c, p in planes.items()])
        _populate(ground)
        ground.agent = NodeAgent(ground).start()
        ground.sidecars = EnvoyTargets(ReadyReplicas(ground.api("workstation")), mesh.client_targets,
                                       {traffic_generator(): mesh.client.url}, poll=0.5)
        mesh.flowing = lambda: bool(ground.sidecars.targets)  # helloworld's sidecar serves while the client runs
    except BaseException:
        ground.stop()
        raise
    return ground


# The stack as a user's own releases leave it (the objects each pinned chart or operator renders, as in
# tests/test_discovery.py): kube-prometheus-stack as `kps` in observability (the Prometheus resource and the operator's
# governing Service), Loki from the Loki chart in logging, Grafana as its own release in grafana, Kiali in istio-system.
PROMETHEUS_CR = "kps-kube-prometheus-stack-prometheus"
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": PROMETHEUS_CR}
# A stand-in Prometheus CRD (the schema is not what these runs test): served, namespaced, any spec.
PROMETHEUS_CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                  "metadata": {"name": "prometheuses.monitoring.coreos.com"},
                  "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                           "names": {"kind": "Prometheus", "listKind": "PrometheusList", "plural": "prometheuses",
                                     "singular": "prometheus"},
                           "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                               "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}


OTHER_RELEASE = "kps"


def relabelled(doc: dict, names: str) -> dict:
    """A monitor of stack/manifests as a user of release `kps` labels it for their Prometheus (release=kps)."""
    if names != "other" or doc.get("kind") not in ("PodMonitor", "ServiceMonitor"):
        return doc
    meta = {**doc["metadata"], "labels": {**(doc["metadata"].get("labels") or {}), "release": OTHER_RELEASE}}
    return {**doc, "metadata": meta}


def prometheus_resource(ground: RealKubeGround, cluster: str) -> dict:
    """The Prometheus resource kube-prometheus-stack renders for release kps; a remote writes to the primary's
    Prometheus at its Service's external IP (the primary node's address, standing in for the bring-up's MetalLB one)."""
    url = None if cluster == "oke" else f"http://{ADDRESSES['oke']}:9090/api/v1/write"
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": PROMETHEUS_CR, "namespace": "observability"},
            "spec": kps_prometheus_spec(cluster, cluster == "oke", OTHER_RELEASE, url)}


def _other_backends(ground: RealKubeGround) -> dict[str, list[Backend]]:
    def prometheus(url: str, external_ips: list[str] | None = None) -> Backend:
        return Backend("prometheus-operated", f"prometheus-{PROMETHEUS_CR}-0", PROMETHEUS_POD_LABELS, 9090, url, 9090,
                       namespace="observability", service_labels={"operated-prometheus": "true"},
                       external_ips=external_ips or [])
    loki = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": "loki"}
    grafana = {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "grafana"}
    kiali = {"app.kubernetes.io/name": "kiali", "app.kubernetes.io/instance": "kiali"}
    promtail = {"app.kubernetes.io/name": "promtail", "app.kubernetes.io/instance": "promtail"}

    def agent(cluster: str, pod: str) -> Backend:
        """The promtail chart's metrics Service (service.enabled) in `logging`, on the cluster's FakePromtail."""
        return Backend("promtail-metrics", pod, promtail, 3101, ground.promtails[cluster].metrics_url.removesuffix("/metrics"),
                       3101, namespace="logging", service_labels=promtail, port_name="http-metrics")
    # Istio's istio-discovery chart: Service istiod (app=istiod, port http-monitoring 15014) on the sample mesh's istiod.
    istiod = [Backend("istiod", "istiod-7b9c8d6f5-fghij", {"app": "istiod", "istio": "pilot"}, 15014, ground.mesh.istiod.url,
                      15014, namespace="istio-system", service_labels={"app": "istiod", "istio": "pilot"},
                      port_name="http-monitoring")] if ground.mesh else []
    return {
        "oke": [prometheus(ground.pair.primary.url, [ADDRESSES["oke"]]),  # where the node's relay carries 9090
                agent("oke", "promtail-7xk2p"), *istiod,
                Backend("loki", "loki-0", {**loki, "app.kubernetes.io/component": "single-binary"}, 3100,
                        ground.loki.url, 3100, namespace="logging",
                        service_labels={**loki, "app.kubernetes.io/component": "single-binary"}),
                Backend("grafana", GRAFANA_POD, grafana, 3000, ground.grafana.url, 80,
                        containers=["grafana", "grafana-sc-dashboard"], namespace="grafana", service_labels=grafana),
                Backend("kiali", "kiali-6f7d8c9b4-klmno", kiali, 20001, ground.kiali.url, 20001,
                        namespace="istio-system", service_labels={**kiali, "app": "kiali"})],
        "workstation": [prometheus(ground.pair.remote.url), agent("workstation", "promtail-9zq3w")],
    }


def _backends(ground: RealKubeGround) -> dict[str, list[Backend]]:
    if ground.names == "other":
        return _other_backends(ground)
    svc = stack_services()
    return {
        "oke": [
            Backend(svc["prometheus"].service, "prometheus-kube-prometheus-stack-prometheus-0",
                    {"app.kubernetes.io/name": "prometheus"}, 9090, ground.pair.primary.url, svc["prometheus"].port),
            Backend(svc["loki"].service, "loki-stack-0", {"app": "loki", "release": "loki-stack"}, 3100, ground.loki.url, svc["loki"].port),
            Backend(svc["grafana"].service, GRAFANA_POD, {"app.kubernetes.io/name": "grafana"}, 3000, ground.grafana.url, svc["grafana"].port,
                    containers=["grafana", "grafana-sc-dashboard"]),
            Backend(svc["kiali"].service, "kiali-6f7d8c9b4-klmno", {"app.kubernetes.io/name": "kiali"},
                    20001, ground.kiali.url, svc["kiali"].port),
        ],
        "workstation": [
            Backend(svc["prometheus"].service, "prometheus-kube-prometheus-stack-prometheus-0",
                    {"app.kubernetes.io/name": "prometheus"}, 9090, ground.pair.remote.url, svc["prometheus"].port),
        ],
    }


def real_remote_secrets(core: kclient.CoreV1Api, namespace: str):
    """FakeKiali's mounts: the Secrets labelled kiali.io/multiCluster=true on the real primary, read at each start."""
    def read() -> dict[str, dict[str, str]]:
        listed = core.list_namespaced_secret(namespace, label_selector=REMOTE_SECRET_LABEL).items
        return {s.metadata.name: {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()} for s in listed}
    return read


def _populate(ground: RealKubeGround) -> None:
    svc = stack_services()
    ns = svc["prometheus"].namespace
    backends = _backends(ground)
    for c, plane in ground.planes.items():
        api = ground.api(c)
        crds = all_crds() + ([PROMETHEUS_CRD] if ground.names == "other" else [])
        apply(api, crds)
        dyn = DynamicClient(api)
        for crd in crds:
            wait_for(f"{c}: CRD {crd['metadata']['name']} established", lambda n=crd["metadata"]["name"]: any(
                x["type"] == "Established" and x["status"] == "True" for x in
                (dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
                 .get(name=n).to_dict().get("status", {}).get("conditions") or [])))
        apply(api, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                    for n in ["istio-system", *({b.namespace for b in backends[c]} - {"", "istio-system"})]])
        for path in APPLIED[c]:
            apply(api, [relabelled(d, ground.names) for d in load(path)])
        for b in backends[c]:
            host, port = b.target.removeprefix("http://").rsplit(":", 1)
            ground.relays.append(Relay(plane.ip, b.port, (host, int(port))).start())
            apply(api, [backend_pod(b, b.namespace or ns),
                        service(b.service, b.namespace or ns, b.service_port, b.port, b.labels, b.service_labels,
                                b.external_ips, b.port_name)])
        if ground.names == "other":
            apply(api, [prometheus_resource(ground, c)])
        backend_names = {b.pod for b in backends[c]}
        for namespace, pods in STACK_PODS[c].items():
            for name in pods:
                if name in backend_names:
                    continue
                line = f'level=info msg="started" pod={name}'
                app = re.sub(r"(-[a-z0-9]{5,10})+$", "", name)  # the workload's name: never a backend's selector
                apply(api, [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace,
                                                                              "labels": {"app": app}},
                             "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                                 {"name": "main", "image": "registry.example/stand-in:1",
                                  "command": ["sh", "-c", f"echo '{line}'; sleep infinity"]}]}}])
    oke = ground.api("oke")
    cred = svc["grafana"].credentials_secret
    secret = ("grafana", "grafana") if ground.names == "other" else (GRAFANA_SECRET, ns)  # the grafana chart's <fullname>
    apply(oke, [{"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": secret[0], "namespace": secret[1]},
                 "stringData": {cred.user_key: ground.grafana.admin_user, cred.password_key: GRAFANA_PASSWORD}}])
    # The bring-up's Kiali remote secret: the token the remote's token controller issued, the remote's address.
    ws = kclient.CoreV1Api(ground.api("workstation"))
    token = wait_for("workstation: kiali-service-account-token issued", lambda: (
        (s := ws.read_namespaced_secret("kiali-service-account-token", ns)).data or {}).get("token") and s)
    facts = Facts()
    facts.set("workstation.kiali_token_json", json.dumps({"data": token.data}))
    facts.set("workstation.control_plane_ip", ground.planes["workstation"].ip)
    secret_file = ground.folder / "kiali-remote-secret-workstation.yaml"
    kiali_ns = "istio-system" if ground.names == "other" else ns  # the operator mounts secrets of Kiali's namespace
    write_kiali_remote_secret(secret_file, "workstation", kiali_ns, facts)
    apply(oke, load(secret_file))
    # Kiali reads the secret as the operator mounts it, and meets the real remote API server with the real token.
    ground.kiali.mounts = real_remote_secrets(kclient.CoreV1Api(ground.api("oke")), kiali_ns)
    ground.kiali.restart()
    kiali_cr = load(MANIFESTS / "kiali.yaml")
    for doc in kiali_cr:
        doc["spec"]["kubernetes_config"]["cluster_name"] = "oke"
    apply(oke, kiali_cr)
    core = {c: kclient.CoreV1Api(ground.api(c)) for c in ground.planes}
    for c, bs in backends.items():
        for b in bs:  # the endpoints controller's work: exactly the backend pod, at the node's address
            wait_for(f"{c}: endpoints of {b.service} = [{ground.planes[c].ip}]", lambda c=c, b=b: [
                a.ip for s in (core[c].read_namespaced_endpoints(b.service, b.namespace or ns).subsets or [])
                for a in s.addresses or []
            ] == [ground.planes[c].ip])


def report_crash_loop(api: kclient.ApiClient, ns: str, name: str, container: str, backoff: str, restarts: int) -> None:
    """What a kubelet reports of a pod whose container keeps exiting: the waiting state with its back-off
    (pkg/kubelet/kuberuntime/kuberuntime_manager.go doBackOff), the last exit just now, not Ready."""
    core = kclient.CoreV1Api(api)
    uid = core.read_namespaced_pod(name, ns, _request_timeout=15).metadata.uid
    now = time.time()
    stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    status = {
        "name": container, "ready": False, "started": False, "restartCount": restarts,
        "image": "registry.example/stand-in:1", "imageID": "",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off {backoff} restarting failed "
                                                                       f"container={container} pod={name}_{ns}({uid})"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": stamp(now - 2), "finishedAt": stamp(now)}},
    }
    conditions = [{"type": t, "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": stamp(now),
                   "message": f"containers with unready status: [{container}]"} for t in ("Ready", "ContainersReady")]
    core.patch_namespaced_pod_status(name, ns, {"status": {"containerStatuses": [status], "conditions": conditions}},
                                     _request_timeout=15)
