"""The events part's proving ground: the real kubernetes-event-exporter v1.6.1 against real control planes.

Two clusters (oke, workstation) of tests/real/kube.py in a network namespace, the Loki fake behind the
primary's `loki-stack` Service (a hostNetwork pod on the kwok node, relayed to the fake on loopback, so the
suites reach it through the API server's service proxy as they do a real Loki), and one real exporter per
cluster: its kubeconfig holds the token of the chart's ServiceAccount (bound to the chart's ClusterRole), as the
pod's mounted token would; its config file is the chart's `config:` from
stack/values/kubernetes-event-exporter.yaml with the receivers the bring-up sets (conformance/provision/parts.py).
It pushes to the primary Loki's address on the node, as a remote's exporter pushes to the MetalLB address.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as kclient

from tests import web
import tests.real as real
from conformance.provision.parts import EVENT_EXPORTER_VALUES, event_receivers
from conformance.core.stack import stack_namespace, stack_services
from tests.fakes.loki import FakeLoki
from tests.proving_realkube import (ADDRESSES, MANIFESTS, Backend, apply, backend_pod, load, report_crash_loop, service,
                                    wait_for)
from tests.real.kube import ControlPlane, kubeconfig_entry, write_kubeconfig
from tests.real.netns import NetNamespace
from tests.real.process import ServerProcess, http_ok
from tests.real.relay import Relay
from tests.suite_runner import write_topology

# The chart's identity for the exporter (tag kubernetes-event-exporter/3.0.2): ServiceAccount <fullname>,
# ClusterRole and ClusterRoleBinding <fullname>-<namespace> (templates/serviceaccount.yaml, clusterrole.yaml,
# rbac.yaml; fullname is the release name, which contains the chart name), rules = values.yaml rbac.rules.
RELEASE = "kubernetes-event-exporter"
RBAC_RULES = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "watch", "list"]}]
METRICS_PORT = 2112  # the exporter's -metrics-address default (main.go); also /-/ready and /-/healthy
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def chart_config() -> dict[str, Any]:
    """The exporter's config as the chart renders it: the values file's `config:` (replicaCount 1: no leader election)."""
    return yaml.safe_load(EVENT_EXPORTER_VALUES.read_text())["config"]


def exporter_config(cluster: str, push_url: str, stream_labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The chart's config with the bring-up's receivers for cluster; stream_labels replaces the labels (faults)."""
    config = copy.deepcopy(chart_config())
    config["receivers"] = json.loads(event_receivers(cluster, push_url).split("=", 1)[1])
    if stream_labels is not None:
        config["receivers"][0]["loki"]["streamLabels"] = stream_labels
    return config


@dataclass
class Exporter(ServerProcess):
    """One real kubernetes-event-exporter, on the cluster's address (its metrics port), with its own config file."""

    LOG = "exporter.log"
    cluster: str
    ip: str
    folder: Path
    kubeconfig: Path

    @property
    def config_path(self) -> Path:
        return self.folder / "config.yaml"

    def start(self, config: dict[str, Any], ready_timeout: float = 60.0) -> "Exporter":
        """Run it with config (call inside the ground's namespace); ready when /-/ready answers."""
        self.stop()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        args = [str(real.require("kubernetes-event-exporter")), f"-conf={self.config_path}", f"-kubeconfig={self.kubeconfig}",
                f"-metrics-address={self.ip}:{METRICS_PORT}"]
        return self.launch(args, http_ok(f"http://{self.ip}:{METRICS_PORT}/-/ready"), name=f"{self.cluster} exporter",
                           timeout=ready_timeout, interval=0.2, cwd=self.folder, append=True)

    def stop(self) -> None:
        super().stop()
        self.proc = None

    def metric(self, name: str) -> float:
        """One counter of the exporter's own /metrics (pkg/metrics: events_sent, send_event_errors, ...)."""
        text = web.get(f"http://{self.ip}:{METRICS_PORT}/metrics", timeout=5).text
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.split("{")[0].split(" ")[0] == name)


@dataclass
class EventsGround:
    """Both control planes, the Loki fake behind the primary's Service, an exporter per cluster."""

    folder: Path
    ns: NetNamespace
    planes: dict[str, ControlPlane]
    loki: FakeLoki
    exporters: dict[str, Exporter] = field(default_factory=dict)
    relays: list[Relay] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    @property
    def loki_push_url(self) -> str:
        """The primary Loki at its pod's address on the node (the relay): what every exporter pushes to."""
        return f"http://{self.planes['oke'].ip}:{stack_services()['loki'].port}/loki/api/v1/push"

    def topology(self, parts: Any = ("events",), name: str = "topology.yaml") -> Path:
        clusters = [{"name": c, "role": "primary" if c == "oke" else "remote", "provider": "existing",
                     "context": f"kind-{c}", "kubeconfig": str(self.kubeconfig)} for c in self.planes]
        path = write_topology(self.folder, clusters, name)
        if parts:
            doc = yaml.safe_load(path.read_text())
            doc["parts"] = list(parts)
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def configure(self, cluster: str, config: dict[str, Any]) -> Exporter:
        """(Re)start the cluster's exporter with config, which its pod's ConfigMap holds too (where the suite reads it)."""
        with self.ns:
            apply(self.api(cluster), [chart_config_map(config)])
            return self.exporters[cluster].start(config)

    def healthy(self, cluster: str) -> Exporter:
        return self.configure(cluster, exporter_config(cluster, self.loki_push_url))

    def empty_loki(self) -> FakeLoki:
        """A new, empty Loki fake behind the same Service and address (the old one's streams gone with it)."""
        old, relay = self.loki, self.relays[0]
        host, port = relay.address
        relay.stop()  # with the connections the API server's proxy keeps open to the old fake
        with self.ns:
            self.loki = FakeLoki().start()
            self.relays[0] = Relay(host, port, _host_port(self.loki.url)).start()
        old.stop()
        return self.loki

    def api(self, cluster: str) -> kclient.ApiClient:
        from kubernetes import config as kconfig
        return kconfig.new_client_from_config(str(self.kubeconfig), context=f"kind-{cluster}")

    def stop(self) -> None:
        for e in self.exporters.values():
            e.stop()
        for r in self.relays:
            r.stop()
        self.loki.stop()
        for p in self.planes.values():
            p.stop()


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def start_events_ground(folder: Path, ns: NetNamespace, exporter_namespace: str | None = None) -> EventsGround:
    """Inside ns: both control planes, the Loki fake behind oke's loki-stack Service, a healthy exporter per cluster;
    exporter_namespace: the chart installed in a namespace of a user's choosing (the stack namespace by default)."""
    with ns:
        folder.mkdir(parents=True, exist_ok=True)
        loki = FakeLoki().start()
        planes = {c: ControlPlane(c, ip, folder / c) for c, ip in ADDRESSES.items()}
        ground = EventsGround(folder, ns, planes, loki)
        try:
            for plane in planes.values():
                plane.start()
            write_kubeconfig(ground.kubeconfig, [kubeconfig_entry(c, p.server, p.pki, "admin") for c, p in planes.items()])
            _populate(ground)
            for c, plane in planes.items():
                ground.exporters[c] = Exporter(c, plane.ip, folder / f"exporter-{c}", chart_identity(ground, c, exporter_namespace))
        except BaseException:
            ground.stop()
            raise
    try:
        for c in planes:
            ground.healthy(c)
    except BaseException:
        ground.stop()
        raise
    return ground


def exporter_deployment(namespace: str) -> dict[str, Any]:
    """The chart's Deployment (templates/deployment.yaml, common.labels.standard), which is how the suite finds the
    exporter and its namespace; at 0 replicas, as the real exporter runs beside the control plane."""
    labels = {"app.kubernetes.io/name": RELEASE, "app.kubernetes.io/instance": RELEASE,
              "app.kubernetes.io/component": RELEASE}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": RELEASE, "namespace": namespace,
                                                                         "labels": labels},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"serviceAccountName": RELEASE, "containers": [{"name": RELEASE, "image": "busybox:1.36"}]}}}}


def chart_identity(ground: Any, cluster: str, namespace: str | None = None) -> Path:
    """The chart's ServiceAccount and RBAC in the cluster, and a kubeconfig with that account's token (ground: any
    with planes and api(cluster), as EventsGround and the all-parts ground; the stack namespace exists).

    What the pod's mounted token gives the exporter in a real cluster (rest.InClusterConfig), so the self-tests
    prove the chart's rules are enough for the watch and the involved objects' lookups.
    """
    ns, plane = namespace or stack_namespace(), ground.planes[cluster]
    role = f"{RELEASE}-{ns}"
    token_secret = f"{RELEASE}-token"
    api = ground.api(cluster)
    apply(api, [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": RELEASE, "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role}, "rules": RBAC_RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
         "subjects": [{"kind": "ServiceAccount", "name": RELEASE, "namespace": ns}]},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
         "metadata": {"name": token_secret, "namespace": ns, "annotations": {"kubernetes.io/service-account.name": RELEASE}}},
        exporter_deployment(ns),
    ])
    core = kclient.CoreV1Api(api)
    token = wait_for(f"{cluster}: {RELEASE} token issued", lambda: (core.read_namespaced_secret(token_secret, ns).data or {}).get("token"))
    path = plane.folder / f"kubeconfig-{RELEASE}"
    entry = kubeconfig_entry(cluster, plane.server, plane.pki, "admin")
    entry["users"][0]["user"] = {"token": base64.b64decode(token).decode()}
    apply(api, [chart_pod(ns)])
    return write_kubeconfig(path, [entry])


def chart_pod(namespace: str | None = None) -> dict:
    """The Deployment's pod as the chart labels it (common.labels.matchLabels; container event-exporter, args only
    -conf, so /metrics on the exporter's default :2112): hostNetwork on the kwok node, whose address is the
    cluster's, where the exporter process listens; the API server's pod proxy reaches its counters there. It mounts
    the chart's ConfigMap at /data (templates/deployment.yaml volume cfg), where the suite reads the exporter's config."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{RELEASE}-7f9c6d5b8-x2k4q", "namespace": namespace or stack_namespace(),
                         "labels": {"app.kubernetes.io/name": "kubernetes-event-exporter",
                                    "app.kubernetes.io/instance": RELEASE}},
            "spec": {"hostNetwork": True, "terminationGracePeriodSeconds": 0, "serviceAccountName": RELEASE,
                     "containers": [{"name": "event-exporter", "image": "registry.example/stand-in:1",
                                     "args": ["-conf=/data/config.yaml"],
                                     "volumeMounts": [{"mountPath": "/data", "name": "cfg"}]}],
                     "volumes": [{"name": "cfg", "configMap": {"name": RELEASE}}]}}


def chart_config_map(config: dict[str, Any]) -> dict:
    """The chart's ConfigMap (templates/configmap.yaml: <fullname>, key config.yaml), holding config."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": RELEASE, "namespace": stack_namespace()},
            "data": {"config.yaml": yaml.safe_dump(config, sort_keys=False)}}


def _populate(ground: EventsGround) -> None:
    """The stack namespace on both clusters; oke's loki-stack Service over a pod whose address relays to the fake."""
    svc, ns = stack_services()["loki"], stack_namespace()
    for c in ground.planes:
        apply(ground.api(c), load(MANIFESTS / "namespaces.yaml"))
    oke = ground.planes["oke"]
    b = Backend(svc.service, "loki-stack-0", {"app": "loki", "release": "loki-stack"}, svc.port, ground.loki.url, svc.port)
    ground.relays.append(Relay(oke.ip, b.port, _host_port(b.target)).start())
    api = ground.api("oke")
    apply(api, [backend_pod(b, ns), service(b.service, ns, b.service_port, b.port, b.labels)])
    core = kclient.CoreV1Api(api)
    wait_for(f"oke: endpoints of {b.service} = [{oke.ip}]", lambda: [
        a.ip for s in (core.read_namespaced_endpoints(b.service, ns).subsets or []) for a in s.addresses or []
    ] == [oke.ip])


def crash_looping(api: kclient.ApiClient, backoff: str = "5m0s", restarts: int = 6) -> None:
    """The exporter pod's container keeps exiting (report_crash_loop)."""
    pod = chart_pod()
    report_crash_loop(api, pod["metadata"]["namespace"], pod["metadata"]["name"], pod["spec"]["containers"][0]["name"],
                      backoff, restarts)


def running_again(api: kclient.ApiClient) -> None:
    """The exporter pod as a kubelet reports it once its container runs and is Ready again."""
    pod = chart_pod()
    core, ns, name = kclient.CoreV1Api(api), pod["metadata"]["namespace"], pod["metadata"]["name"]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    container = pod["spec"]["containers"][0]["name"]
    status = {"name": container, "ready": True, "started": True, "restartCount": 0, "image": "registry.example/stand-in:1",
              "imageID": "", "state": {"running": {"startedAt": stamp}}, "lastState": {}}
    conditions = [{"type": t, "status": "True", "lastTransitionTime": stamp} for t in ("Ready", "ContainersReady")]
    core.patch_namespaced_pod_status(name, ns, {"status": {"containerStatuses": [status], "conditions": conditions}},
                                     _request_timeout=15)
