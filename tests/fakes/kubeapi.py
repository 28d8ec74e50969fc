"""A contract-faithful fake kube-apiserver: core resources, the service proxy, auth and RBAC faults.

One FakeKubeAPI is one cluster. Paths, JSON shapes, status codes and `Status` error texts follow
kube-apiserver (see kube_objects.py); pods move Pending -> Running -> Succeeded on a short clock.
Watch is refused with a 400 (see `WATCH_REFUSED`): list and poll instead.

The real control plane (tests/real/kube.py: kube-apiserver 1.35 with etcd, kcm, scheduler and kwok in a
network namespace) now shows every fault this fake has a switch for: auth and RBAC refusals, expired
credentials, image-pull errors, missing CRDs, endpoints not ready, crash loops, slow pod starts. This fake
stays only for what a real one cannot be made to show, or not on every machine:
- exact sub-second timings under --timeout-scale (the namespace controller's and kubelet's pace are not ours);
- 5xx, 429 and dropped connections from the API server itself, and malformed answers;
- machines without root or Linux network namespaces (macOS laptops), where the real ground cannot start.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, unquote, urlsplit

import yaml

from . import kube_objects as ko
from .server import FakeServer, Request, Response

WATCH_REFUSED = "watch is not supported by the fake Kubernetes API server (FakeKubeAPI); list and poll instead"
NS_TERMINATING_CONFLICT = ("The system is ensuring all content is removed from this namespace.  "
                           "Upon completion, this namespace will automatically be purged by the system.")
PUBLIC_PATHS = {"/version", "/version/", "/healthz", "/livez", "/readyz"}  # system:public-info-viewer, readable anonymously
IMMORTAL_NAMESPACES = {"default", "kube-system", "kube-public"}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
              "trailer", "transfer-encoding", "upgrade", "host", "content-length", "authorization"}


@dataclass(frozen=True)
class Kind:
    """One served resource."""

    resource: str
    kind: str
    group: str = ""
    version: str = "v1"
    namespaced: bool = True
    fields: tuple[str, ...] = ()  # field selectors beyond metadata.name / metadata.namespace

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        return ko.qualified(self.resource, self.group)


POD_FIELDS = ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
              "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName")
EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
                "reason", "reportingComponent", "source", "type")
CORE = {k.resource: k for k in (
    Kind("pods", "Pod", fields=POD_FIELDS), Kind("namespaces", "Namespace", namespaced=False, fields=("status.phase",)),
    Kind("events", "Event", fields=EVENT_FIELDS), Kind("secrets", "Secret", fields=("type",)),
    Kind("services", "Service"), Kind("nodes", "Node", namespaced=False, fields=("spec.unschedulable",)),
    Kind("configmaps", "ConfigMap"))}
# ConfigMap data keys (k8s.io/apimachinery validation IsConfigMapKey) and the object's size cap (MaxSecretSize).
CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
CONFIGMAP_MAX_BYTES = 1024 * 1024
CUSTOM = {(k.group, k.version, k.resource): k for k in (
    Kind("servicemonitors", "ServiceMonitor", "monitoring.coreos.com"),
    Kind("podmonitors", "PodMonitor", "monitoring.coreos.com"),
    Kind("prometheuses", "Prometheus", "monitoring.coreos.com"),
    Kind("alertmanagers", "Alertmanager", "monitoring.coreos.com"),
    Kind("kialis", "Kiali", "kiali.io", "v1alpha1"))}
DEPLOYMENTS = Kind("deployments", "Deployment", "apps")
# Content types the API server accepts for PATCH of built-in resources (apiserver handlers/patch.go).
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json",
               "application/apply-patch+yaml")


@dataclass
class Attributes:
    """What the authorizer sees of a request (k8s.io/apiserver RequestInfo)."""

    verb: str
    path: str
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    group: str = ""

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


def request_attributes(request: Request) -> Attributes:
    """Parse a request path into authorizer attributes, like RequestInfoFactory."""
    parts = [unquote(p) for p in request.path.strip("/").split("/") if p]  # Go serves the decoded path
    non_resource = Attributes(request.method.lower(), request.path)
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return non_resource
    watch = rest[0] == "watch"
    rest = rest[1:] if watch else rest
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2:
            rest = rest[2:]
    if not rest:
        return non_resource
    resource, name = rest[0], rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    watch = watch or (request.arg("watch") in ("true", "1") and not subresource)
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch"}
    if request.method in ("GET", "HEAD"):
        verb = "watch" if watch else ("get" if name else "list")
    elif request.method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = verbs.get(request.method, request.method.lower())
    return Attributes(verb, request.path, resource, subresource, namespace, name, group)


@dataclass
class Denial:
    """One RBAC denial: resource (`services/proxy`, `secrets`, `*`) or non-resource path (`/version`)."""

    resource: str
    verb: str = "*"
    namespace: str | None = None

    def matches(self, a: Attributes) -> bool:
        target = (a.resource + ("/" + a.subresource if a.subresource else "")) if a.is_resource else a.path
        return (self.resource in ("*", target) and self.verb in ("*", a.verb)
                and (self.namespace is None or self.namespace == a.namespace))


@dataclass
class PodClock:
    """Where a created pod is in its lifecycle, on the monotonic clock."""

    start_at: float
    exit_at: float | None
    exit_code: int
    stage: str = "created"  # created -> scheduled -> running -> exited
    started_wall: float = 0.0


@dataclass
class ServicePorts:
    """Proxy targets of one Service: port name -> backend URL, and whether endpoints are ready."""

    backends: dict[str, str] = field(default_factory=dict)
    ready: bool = True


def split_scheme_name_port(service_id: str) -> tuple[str, str, str] | None:
    """`name`, `name:port` or `scheme:name:port` (utilnet.SplitSchemeNamePort); None when invalid."""
    parts = service_id.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        return None
    if not name or scheme not in ("", "http", "https"):
        return None
    return scheme, name, port


def _header(request: Request, name: str) -> str | None:
    for key, value in request.headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _json(code: int, obj: Any) -> Response:
    return Response(code, ko.encode(obj), "application/json")


class FakeKubeAPI(FakeServer):
    """A fake kube-apiserver for one cluster, on 127.0.0.1 over plain HTTP with bearer-token auth."""

    def __init__(self, cluster: str = "oke", *, token: str | None = None,
                 user: str = "system:serviceaccount:monitoring:conformance", version: str = "v1.33.1",
                 pod_start_delay: float = 0.2, pod_run_time: float = 0.2, pod_delete_delay: float = 0.1,
                 namespace_delete_delay: float = 0.3, proxy_timeout: float = 10.0,
                 on_pod_started: Callable[[dict], None] | None = None) -> None:
        super().__init__()
        self.cluster = cluster
        self.token = token or f"fake-{cluster}-{secrets.token_hex(16)}"
        self.user = user
        self.version = version
        self.pod_start_delay = pod_start_delay
        self.pod_run_time = pod_run_time
        self.pod_delete_delay = pod_delete_delay
        self.namespace_delete_delay = namespace_delete_delay
        self.proxy_timeout = proxy_timeout
        self.on_pod_started = on_pod_started
        self.hook_errors: list[BaseException] = []
        # Fault switches.
        self.anonymous_auth = False  # --anonymous-auth=true (kind's default): no token -> system:anonymous, 403s
        self.denials: list[Denial] = []  # RBAC: the token's subject lacks these permissions -> 403 Forbidden
        self.image_pull_errors: dict[str, str] = {}  # image -> pull error: created pods stay ErrImagePull
        self.removed_groups: set[str] = set()  # CRDs not installed: /apis/<group>/... -> 404 page not found
        self.tokens: dict[str, str] = {}  # more bearer tokens -> user (a service account's, e.g. Kiali's); del = revoked

        self._state = threading.RLock()
        self._rv = 1000
        self._objects: dict[str, dict[tuple[str, str], dict]] = {}
        self._clocks: dict[tuple[str, str], PodClock] = {}
        self._logs: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
        self._pod_deletions: dict[tuple[str, str], float] = {}
        self._ns_deletions: dict[str, float] = {}
        self._services: dict[tuple[str, str], ServicePorts] = {}
        self._rollouts: dict[tuple[str, str], float] = {}  # deployment -> when its pods and status catch up
        self._ip_counter = 10
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        self.node_name = f"{cluster}-control-plane"
        self.host_ip = f"172.18.0.{2 + sum(cluster.encode()) % 200}"
        self._register_routes()
        self._seed()

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> "FakeKubeAPI":
        super().start()
        self._stopping.clear()
        self._ticker = threading.Thread(target=self._tick_forever, name=f"{type(self).__name__}-clock", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._ticker:
            self._ticker.join(timeout=2)
            self._ticker = None
        super().stop()

    def _tick_forever(self) -> None:
        while not self._stopping.wait(0.01):
            self._advance()

    # -- kubeconfig ------------------------------------------------------------------
    def write_kubeconfig(self, path: str | Path, context: str | None = None, cluster_name: str | None = None,
                         user: str | None = None, *, namespace: str | None = None,
                         current: bool = False) -> Path:
        """Write (or merge into) a kubeconfig with a token user; current-context is set if none or `current`."""
        path = Path(path)
        context = context or f"kind-{self.cluster}"
        cluster_name = cluster_name or context
        user = user or context
        config = yaml.safe_load(path.read_text()) if path.exists() else None
        if not isinstance(config, dict):
            config = {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "contexts": [],
                      "users": []}
        context_body: dict[str, str] = {"cluster": cluster_name, "user": user}
        if namespace:
            context_body["namespace"] = namespace
        for section, entry in (("clusters", {"name": cluster_name, "cluster": {"server": self.url}}),
                               ("contexts", {"name": context, "context": context_body}),
                               ("users", {"name": user, "user": {"token": self.token}})):
            entries = [e for e in config.get(section) or [] if e.get("name") != entry["name"]]
            config[section] = entries + [entry]
        if current or not config.get("current-context"):
            config["current-context"] = context
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # -- seeding helpers -------------------------------------------------------------
    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _put(self, kind: Kind, obj: dict) -> dict:
        m = obj["metadata"]
        self._objects.setdefault(kind.key, {})[(m.get("namespace", ""), m["name"])] = obj
        return obj

    def _get(self, kind: Kind, namespace: str, name: str) -> dict | None:
        return self._objects.get(kind.key, {}).get((namespace if kind.namespaced else "", name))

    def _touch(self, obj: dict) -> None:
        obj["metadata"]["resourceVersion"] = str(self._next_rv())

    def _seed(self) -> None:
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease", "local-path-storage"):
            self.add_namespace(ns)
        self.add_node(self.node_name)

    def add_namespace(self, name: str, labels: dict | None = None) -> dict:
        with self._state:
            existing = self._get(CORE["namespaces"], "", name)
            if existing:
                return copy.deepcopy(existing)
            return copy.deepcopy(self._put(CORE["namespaces"], ko.namespace_obj(name, self._next_rv(), labels)))

    def add_node(self, name: str, ready: bool = True) -> dict:
        with self._state:
            node = ko.node_obj(name, self._next_rv(), self.host_ip, self.version)
            if not ready:
                ready_cond = node["status"]["conditions"][-1]
                ready_cond.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.")
            return copy.deepcopy(self._put(CORE["nodes"], node))

    def add_secret(self, namespace: str, name: str, data: dict[str, str | bytes], type_: str = "Opaque",
                   labels: dict | None = None, annotations: dict | None = None) -> dict:
        """Store a Secret; `data` values are plain text (or bytes) and are served base64-encoded."""
        self.add_namespace(namespace)
        with self._state:
            obj = ko.secret_obj(namespace, name, data, self._next_rv(), type_, labels, annotations)
            return copy.deepcopy(self._put(CORE["secrets"], obj))

    def remove_secret(self, namespace: str, name: str) -> None:
        """Delete a Secret (what `kubectl delete secret` leaves: nothing)."""
        with self._state:
            self._objects.get(CORE["secrets"].key, {}).pop((namespace, name), None)

    def add_event(self, namespace: str, involved: dict | str, reason: str, message: str, *, type_: str = "Normal",
                  count: int = 1, component: str = "kubelet", kind: str = "Pod", field_path: str = "") -> dict:
        """Store an Event; `involved` is an object dict (its reference is taken) or the name of a `kind`."""
        with self._state:
            if isinstance(involved, str):
                target = self._get(CORE["pods"], namespace, involved) if kind == "Pod" else None
                ref = ko.involved_ref(target, field_path) if target else {
                    "kind": kind, "namespace": namespace, "name": involved, "apiVersion": "v1"}
            else:
                ref = ko.involved_ref(involved, field_path)
            event = ko.event_obj(namespace, ref, reason, message, self._next_rv(), type_, count, component,
                                 self.node_name if component == "kubelet" else "")
            return copy.deepcopy(self._put(CORE["events"], event))

    def add_pod(self, namespace: str, name: str, *, image: str = "busybox:1.36", containers: list[dict] | None = None,
                labels: dict | None = None, annotations: dict | None = None, phase: str = "Running",
                ready: bool = True, crashloop: bool = False, restart_count: int = 5, exit_code: int = 1,
                logs: str | dict[str, str] | None = None, previous_logs: str | dict[str, str] | None = None) -> dict:
        """Seed a pod in a fixed state (no lifecycle clock); `crashloop` gives CrashLoopBackOff + lastState."""
        self.add_namespace(namespace)
        with self._state:
            pod = {"kind": "Pod", "apiVersion": "v1", "metadata": ko.meta(name, namespace, 0, labels, annotations,
                                                                         time.time() - 300),
                   "spec": {"containers": copy.deepcopy(containers) or [{"name": "main", "image": image}],
                            "nodeName": self.node_name}}
            ko.default_pod(pod)
            pod_ip = self._next_pod_ip()
            if crashloop:
                pod["status"] = ko.crashloop_status(pod, host_ip=self.host_ip, pod_ip=pod_ip, restarts=restart_count,
                                                    exit_code=exit_code)
            else:
                pod["status"] = ko.pod_status(pod, phase, host_ip=self.host_ip, pod_ip=pod_ip,
                                              started=time.time() - 240, exit_code=0 if phase == "Succeeded" else exit_code,
                                              finished=time.time() - 60 if phase in ("Succeeded", "Failed") else None)
                if phase == "Running" and not ready:
                    self._mark_unready(pod)
            self._touch(pod)
            names = [c["name"] for c in pod["spec"]["containers"]]
            self._logs[(namespace, name)] = {"current": self._per_container(logs, names),
                                             "previous": self._per_container(previous_logs, names, crashloop)}
            self._put(CORE["pods"], pod)
            if crashloop:
                for c in names:
                    self.add_event(namespace, pod, "BackOff",
                                   f"Back-off restarting failed container {c} in pod {name}_{namespace}({pod['metadata']['uid']})",
                                   type_="Warning", count=restart_count, field_path=f"spec.containers{{{c}}}")
            return copy.deepcopy(pod)

    def add_configmap(self, namespace: str, name: str, data: dict[str, str], labels: dict | None = None,
                      annotations: dict | None = None) -> dict:
        """Seed a ConfigMap (e.g. one a chart rendered)."""
        self.add_namespace(namespace)
        with self._state:
            obj = {"kind": "ConfigMap", "apiVersion": "v1",
                   "metadata": ko.meta(name, namespace, self._next_rv(), labels, annotations), "data": dict(data)}
            return copy.deepcopy(self._put(CORE["configmaps"], obj))

    def append_log(self, namespace: str, name: str, container: str, line: str) -> None:
        """One more line in a seeded pod's current container log (what a running container prints)."""
        with self._state:
            logs = self._logs.setdefault((namespace, name), {"current": {}, "previous": {}})["current"]
            logs[container] = logs.get(container, "") + line + "\n"

    @staticmethod
    def _per_container(text: str | dict[str, str] | None, names: list[str], default_empty: bool = True) -> dict[str, str]:
        if isinstance(text, dict):
            return dict(text)
        if text is None:
            return {n: "" for n in names} if default_empty else {}
        return {names[0]: text}

    @staticmethod
    def _mark_unready(pod: dict) -> None:
        names = "[" + " ".join(c["name"] for c in pod["spec"]["containers"]) + "]"
        for cond in pod["status"]["conditions"]:
            if cond["type"] in ("Ready", "ContainersReady"):
                cond.update(status="False", reason="ContainersNotReady", message=f"containers with unready status: {names}")
        for cs in pod["status"]["containerStatuses"]:
            cs["ready"] = False

    def _next_pod_ip(self) -> str:
        self._ip_counter += 1
        return f"10.244.{self._ip_counter // 250}.{self._ip_counter % 250 + 2}"

    def add_service(self, namespace: str, name: str, backend: str | None = None, *, port: int = 80,
                    port_name: str = "http", target_port: int | None = None, ports: list[dict] | None = None,
                    labels: dict | None = None, selector: dict | None = None, headless: bool = False) -> dict:
        """A Service whose endpoints proxy to `backend` (a URL); multi-port: `ports=[{name, port, targetPort?, backend?}]`.

        A port without a backend has no endpoints: the proxy answers 503 like a Service with no ready pods.
        `headless`: clusterIP None, as a chart's `clusterIP: None` twin.
        """
        self.add_namespace(namespace)
        ports = ports or [{"name": port_name, "port": port, "targetPort": target_port or port, "backend": backend}]
        with self._state:
            cluster_ip = "None" if headless else f"10.96.{len(self._services) // 250}.{len(self._services) % 250 + 10}"
            obj = ko.service_obj(namespace, name, ports, self._next_rv(), cluster_ip, labels, selector or labels)
            self._services[(namespace, name)] = ServicePorts({p["name"]: p["backend"] for p in ports if p.get("backend")})
            return copy.deepcopy(self._put(CORE["services"], obj))

    def add_stack_services(self, namespace: str = "monitoring", *, prometheus: str | None = None,
                           loki: str | None = None, grafana: str | None = None, kiali: str | None = None) -> None:
        """The stack's four Services with their chart names, ports and port names, proxied to the given URLs."""
        self.add_service(namespace, "kube-prometheus-stack-prometheus", ports=[
            {"name": "http-web", "port": 9090, "backend": prometheus}, {"name": "reloader-web", "port": 8080}])
        self.add_service(namespace, "loki-stack", loki, port=3100, port_name="http-metrics")
        self.add_service(namespace, "kube-prometheus-stack-grafana", grafana, port=80, port_name="http-web",
                         target_port=3000)
        self.add_service(namespace, "kiali", ports=[{"name": "http", "port": 20001, "backend": kiali},
                                                    {"name": "http-metrics", "port": 9090}])

    def set_backend(self, namespace: str, name: str, backend: str | None, port_name: str | None = None) -> None:
        """Point one port (default: the first) of a Service at another backend URL, or None for no endpoints."""
        with self._state:
            svc = self._get(CORE["services"], namespace, name)
            assert svc, f"no service {namespace}/{name}"
            port_name = svc["spec"]["ports"][0].get("name", "") if port_name is None else port_name
            if backend is None:
                self._services[(namespace, name)].backends.pop(port_name, None)
            else:
                self._services[(namespace, name)].backends[port_name] = backend

    def set_endpoints_ready(self, namespace: str, name: str, ready: bool) -> None:
        """Fault: no ready endpoints (every pod of the Service unready) -> 503 `no endpoints available`."""
        with self._state:
            self._services[(namespace, name)].ready = ready

    def add_custom_object(self, group: str, version: str, plural: str, namespace: str, obj: dict) -> dict:
        """Store a custom object (ServiceMonitor, PodMonitor, Prometheus, Kiali); metadata is completed."""
        kind = CUSTOM[(group, version, plural)]
        self.add_namespace(namespace)
        with self._state:
            given = obj.get("metadata", {})
            m = ko.meta(given["name"], namespace, self._next_rv(), given.get("labels"), given.get("annotations"))
            m["generation"] = 1
            rest = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
            stored = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": m, **rest}
            return copy.deepcopy(self._put(kind, stored))

    def add_service_monitor(self, namespace: str, name: str, labels: dict | None = None,
                            spec: dict | None = None) -> dict:
        return self.add_custom_object("monitoring.coreos.com", "v1", "servicemonitors", namespace,
                                      {"metadata": {"name": name, "labels": labels or {}}, "spec": spec or {}})

    def add_pod_monitor(self, namespace: str, name: str, labels: dict | None = None, spec: dict | None = None) -> dict:
        return self.add_custom_object("monitoring.coreos.com", "v1", "podmonitors", namespace,
                                      {"metadata": {"name": name, "labels": labels or {}}, "spec": spec or {}})

    def add_prometheus(self, namespace: str, name: str, spec: dict | None = None) -> dict:
        return self.add_custom_object("monitoring.coreos.com", "v1", "prometheuses", namespace,
                                      {"metadata": {"name": name}, "spec": spec or {}})

    def add_alertmanager(self, namespace: str, name: str, spec: dict | None = None) -> dict:
        return self.add_custom_object("monitoring.coreos.com", "v1", "alertmanagers", namespace,
                                      {"metadata": {"name": name}, "spec": spec or {}})

    def add_kiali(self, namespace: str, name: str = "kiali", spec: dict | None = None) -> dict:
        return self.add_custom_object("kiali.io", "v1alpha1", "kialis", namespace,
                                      {"metadata": {"name": name}, "spec": spec or {}})

    def add_deployment(self, namespace: str, name: str, replicas: int = 1, labels: dict | None = None, *,
                       containers: list[dict] | None = None) -> dict:
        """An apps/v1 Deployment, already rolled out: `replicas` Ready pods carry its labels and pod-template-hash."""
        self.add_namespace(namespace)
        labels = labels or {"app": name}
        with self._state:
            obj = ko.deployment_obj(namespace, name, replicas, labels, self._next_rv(),
                                    copy.deepcopy(containers) or [{"name": name, "image": "busybox:1.36"}])
            self._put(DEPLOYMENTS, obj)
            self._roll_out(obj)
            return copy.deepcopy(obj)

    def crash_again(self, namespace: str, name: str) -> None:
        """A crash-looping seeded pod's containers restart (and crash) once more: restartCount grows."""
        with self._state:
            pod = self._get(CORE["pods"], namespace, name)
            for cs in pod["status"]["containerStatuses"]:
                cs["restartCount"] += 1
            self._touch(pod)

    def heal_pod(self, namespace: str, name: str) -> None:
        """A crash-looping seeded pod's containers start and stay up: Running and Ready, restarts kept."""
        with self._state:
            pod = self._get(CORE["pods"], namespace, name)
            restarts = {cs["name"]: cs["restartCount"] for cs in pod["status"]["containerStatuses"]}
            last = {cs["name"]: cs.get("lastState", {}) for cs in pod["status"]["containerStatuses"]}
            pod["status"] = ko.pod_status(pod, "Running", host_ip=self.host_ip, pod_ip=pod["status"].get("podIP", ""),
                                          started=time.time())
            for cs in pod["status"]["containerStatuses"]:
                cs["restartCount"], cs["lastState"] = restarts[cs["name"]], last[cs["name"]]
            self._touch(pod)

    def deny(self, resource: str, verb: str = "*", namespace: str | None = None) -> None:
        """Fault: RBAC lacks `verb` on `resource` (`services/proxy`, `pods/log`, `secrets`, `*`, or a path)."""
        self.denials.append(Denial(resource, verb, namespace))

    # -- inspection ------------------------------------------------------------------
    def deployment_replicas(self, namespace: str, name: str) -> int | None:
        """spec.replicas of a Deployment as last written (None: no such Deployment)."""
        self._advance()
        with self._state:
            obj = self._get(DEPLOYMENTS, namespace, name)
            return None if obj is None else int(obj["spec"].get("replicas", 1))

    def get_object(self, resource: str, namespace: str, name: str) -> dict | None:
        """A copy of a stored core object (`pods`, `namespaces`, ...) or None."""
        self._advance()
        with self._state:
            obj = self._get(CORE[resource], namespace, name)
            return copy.deepcopy(obj) if obj else None

    def pod_log(self, namespace: str, name: str, container: str | None = None, previous: bool = False) -> str:
        """The log text the fake serves for a container (the first one by default)."""
        with self._state:
            logs = self._logs.get((namespace, name), {}).get("previous" if previous else "current", {})
            return logs.get(container or next(iter(logs), ""), "")

    # -- clock -----------------------------------------------------------------------
    def _advance(self) -> None:
        """Move every created pod, pending deletion and terminating namespace along; fire hooks."""
        started: list[dict] = []
        now = time.monotonic()
        with self._state:
            for key, clock in list(self._clocks.items()):
                pod = self._get(CORE["pods"], *key)
                if pod is None:
                    del self._clocks[key]
                    continue
                self._step_pod(pod, clock, now, started)
            for key, at in list(self._pod_deletions.items()):
                if now >= at:
                    self._remove_pod(key)
            for ns, at in list(self._ns_deletions.items()):
                if now >= at:
                    self._purge_namespace(ns)
            for key, at in list(self._rollouts.items()):
                deployment = self._get(DEPLOYMENTS, *key)
                if deployment is not None and now >= at:
                    self._roll_out(deployment)
        for pod in started:
            if self.on_pod_started:
                try:
                    self.on_pod_started(pod)
                except BaseException as exc:  # a failing hook must not kill the clock; tests assert hook_errors
                    self.hook_errors.append(exc)

    def _step_pod(self, pod: dict, clock: PodClock, now: float, started: list[dict]) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if clock.stage == "created":
            clock.stage = "scheduled"
            pod["spec"]["nodeName"] = self.node_name
            image = pod["spec"]["containers"][0].get("image", "")
            if image in self.image_pull_errors:
                pod["status"] = ko.pod_status(pod, "Pending", host_ip=self.host_ip, pod_ip="", started=None,
                                              waiting_reason="ErrImagePull", waiting_message=self.image_pull_errors[image])
                self._pod_event(pod, "Failed", f'Failed to pull image "{image}": {self.image_pull_errors[image]}', "Warning")
                clock.stage = "stuck"
            else:
                pod["status"] = ko.pod_status(pod, "Pending", host_ip=self.host_ip, pod_ip="", started=None)
            self._pod_event(pod, "Scheduled", f"Successfully assigned {ns}/{name} to {self.node_name}",
                            component="default-scheduler")
            self._touch(pod)
        if clock.stage == "scheduled" and now >= clock.start_at and not pod["metadata"].get("deletionTimestamp"):
            clock.stage, clock.started_wall = "running", time.time()
            pod["status"] = ko.pod_status(pod, "Running", host_ip=self.host_ip, pod_ip=self._next_pod_ip(),
                                          started=clock.started_wall)
            for c in pod["spec"]["containers"]:
                self._pod_event(pod, "Pulled", f'Container image "{c.get("image", "")}" already present on machine')
                self._pod_event(pod, "Created", f"Created container: {c['name']}")
                self._pod_event(pod, "Started", f"Started container {c['name']}")
            self._touch(pod)
            started.append(copy.deepcopy(pod))
        if clock.stage == "running" and clock.exit_at is not None and now >= clock.exit_at:
            clock.stage = "exited"
            pod_ip = pod["status"].get("podIP", "")
            pod["status"] = ko.pod_status(pod, "Succeeded" if clock.exit_code == 0 else "Failed",
                                          host_ip=self.host_ip, pod_ip=pod_ip, started=clock.started_wall,
                                          exit_code=clock.exit_code, finished=time.time())
            self._touch(pod)

    def _pod_event(self, pod: dict, reason: str, message: str, type_: str = "Normal",
                   component: str = "kubelet") -> None:
        m = pod["metadata"]
        field_path = "" if component != "kubelet" else f"spec.containers{{{pod['spec']['containers'][0]['name']}}}"
        event = ko.event_obj(m["namespace"], ko.involved_ref(pod, field_path), reason, message, self._next_rv(),
                             type_, 1, component, self.node_name if component == "kubelet" else "")
        self._put(CORE["events"], event)

    def _remove_pod(self, key: tuple[str, str]) -> None:
        self._objects.get("pods", {}).pop(key, None)
        self._clocks.pop(key, None)
        self._logs.pop(key, None)
        self._pod_deletions.pop(key, None)
        self._next_rv()

    def _purge_namespace(self, ns: str) -> None:
        for store in self._objects.values():
            for key in [k for k in store if k[0] == ns]:
                del store[key]
        self._objects["namespaces"].pop(("", ns), None)
        for key in [k for k in self._clocks if k[0] == ns]:
            del self._clocks[key]
        for key in [k for k in self._services if k[0] == ns]:
            del self._services[key]
        for key in [k for k in self._rollouts if k[0] == ns]:
            del self._rollouts[key]
        self._ns_deletions.pop(ns, None)
        self._next_rv()

    # -- dispatch: authn, authz, then routes -----------------------------------------
    def dispatch(self, request: Request) -> Response:
        self._advance()
        user, failure = self._authenticate(request)
        if failure:
            return failure
        attributes = request_attributes(request)
        denied = self._authorize(attributes, user)
        if denied:
            return denied
        if attributes.verb == "watch":
            return _json(400, ko.bad_request(WATCH_REFUSED))
        return super().dispatch(request)

    def _authenticate(self, request: Request) -> tuple[str, Response | None]:
        parts = (_header(request, "Authorization") or "").split(" ", 1)
        token = parts[1].strip() if len(parts) == 2 and parts[0].lower() == "bearer" else ""
        if not token:  # no bearer token: the request is anonymous, or rejected when anonymous auth is off
            return ("system:anonymous", None) if self.anonymous_auth else ("", _json(401, ko.unauthorized()))
        user = self.user if token == self.token else self.tokens.get(token)
        if user is None:
            return "", _json(401, ko.unauthorized())
        return user, None

    def _authorize(self, a: Attributes, user: str) -> Response | None:
        anonymous_denied = user == "system:anonymous" and not (not a.is_resource and a.path in PUBLIC_PATHS)
        if not anonymous_denied and not any(d.matches(a) for d in self.denials):
            return None
        if not a.is_resource:
            return _json(403, ko.forbidden("", "", f'User "{user}" cannot {a.verb} path "{a.path}"'))
        combined = a.resource + ("/" + a.subresource if a.subresource else "")
        scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
        cause = f'User "{user}" cannot {a.verb} resource "{combined}" in API group "{a.group}" {scope}'
        return _json(403, ko.forbidden(a.resource, a.name, cause, a.group))

    def _self_access_review(self, request: Request) -> Response:
        """POST selfsubjectaccessreviews: would the caller's request be allowed? (stores nothing; RBAC gives no reason
        for a denial, and the real authorizer's allow reason names the binding)."""
        body, bad = self._body(request)
        if bad:
            return bad
        attrs = (body.get("spec") or {}).get("resourceAttributes") or {}
        a = Attributes(attrs.get("verb", ""), "", attrs.get("resource", ""), attrs.get("subresource", ""),
                       attrs.get("namespace", ""), attrs.get("name", ""), attrs.get("group", ""))
        allowed = not any(d.matches(a) for d in self.denials)
        status = {"allowed": True, "reason": f'RBAC: allowed by ClusterRoleBinding "cluster-admin" to User "{self.user}"'} \
            if allowed else {"allowed": False}
        return _json(201, {**body, "metadata": {"creationTimestamp": None}, "status": status})

    def writes(self) -> list[Request]:
        """Every recorded request that could change state: an access review is a POST that stores nothing."""
        return [r for r in super().writes() if not r.path.endswith("/selfsubjectaccessreviews")]

    def not_found(self, request: Request) -> Response:
        """Unknown paths under a served group-version get a Status; anything else the mux's plain 404."""
        served = request.path.startswith(("/api/v1/", "/apis/apps/v1/")) or any(
            request.path.startswith(f"/apis/{g}/{v}/") for g, v, _ in CUSTOM if g not in self.removed_groups)
        if served:
            return _json(404, ko.status(404, "NotFound", "the server could not find the requested resource",
                                        {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}))
        return Response(404, "404 page not found\n")

    def _on(self, pattern: str, **handlers: Callable[[Request], Response]) -> None:
        """Route the given methods; the others get the API server's 405 Status."""
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            self.route(method, pattern, handlers.get(method, self._method_not_allowed))

    def _method_not_allowed(self, request: Request) -> Response:
        return _json(405, ko.method_not_allowed())

    def _register_routes(self) -> None:
        ns, name, core = r"(?P<ns>[^/]+)", r"(?P<name>[^/]+)", r"(?P<resource>events|services|secrets)"
        group = r"(?P<group>[^/]+)/(?P<version>[^/]+)"
        self._on("/version/?", GET=self._get_version)  # the Python client asks for /version/
        self._on("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", POST=self._self_access_review)
        self._on("/(healthz|livez|readyz)", GET=lambda r: Response(200, "ok"))
        self._on("/api", GET=self._get_api_versions)
        self._on("/api/v1", GET=self._get_core_resources)
        self._on("/apis", GET=self._get_api_groups)
        self._on(f"/apis/{group}", GET=self._get_group_resources)
        self._on("/api/v1/namespaces", GET=lambda r: self._list(CORE["namespaces"], "", r), POST=self._create_namespace)
        self._on(f"/api/v1/namespaces/{name}", GET=lambda r: self._read(CORE["namespaces"], "", r),
                 DELETE=self._delete_namespace)
        self._on("/api/v1/(?P<resource>pods|events|services|secrets|nodes)",
                 GET=lambda r: self._list(CORE[r.params["resource"]], "", r))
        self._on(f"/api/v1/nodes/{name}", GET=lambda r: self._read(CORE["nodes"], "", r))
        self._on(f"/api/v1/namespaces/{ns}/pods", GET=lambda r: self._list(CORE["pods"], r.params["ns"], r),
                 POST=self._create_pod)
        self._on(f"/api/v1/namespaces/{ns}/pods/{name}", GET=lambda r: self._read(CORE["pods"], r.params["ns"], r),
                 DELETE=self._delete_pod)
        self._on(f"/api/v1/namespaces/{ns}/pods/{name}/log", GET=self._read_log)
        self._on("/api/v1/configmaps", GET=lambda r: self._list(CORE["configmaps"], "", r))
        self._on(f"/api/v1/namespaces/{ns}/configmaps", GET=lambda r: self._list(CORE["configmaps"], r.params["ns"], r),
                 POST=self._create_configmap)
        self._on(f"/api/v1/namespaces/{ns}/configmaps/{name}",
                 GET=lambda r: self._read(CORE["configmaps"], r.params["ns"], r), DELETE=self._delete_configmap)
        proxy = self._proxy
        self._on(f"/api/v1/namespaces/{ns}/services/(?P<id>[^/]+)/proxy(?P<rest>/.*)?",
                 GET=proxy, POST=proxy, PUT=proxy, PATCH=proxy, DELETE=proxy)
        self._on(f"/api/v1/namespaces/{ns}/{core}",
                 GET=lambda r: self._list(CORE[r.params["resource"]], r.params["ns"], r))
        self._on(f"/api/v1/namespaces/{ns}/{core}/{name}",
                 GET=lambda r: self._read(CORE[r.params["resource"]], r.params["ns"], r))
        self._on("/apis/apps/v1/deployments", GET=lambda r: self._list(DEPLOYMENTS, "", r))
        self._on(f"/apis/apps/v1/namespaces/{ns}/deployments", GET=lambda r: self._list(DEPLOYMENTS, r.params["ns"], r))
        self._on(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}",
                 GET=lambda r: self._read(DEPLOYMENTS, r.params["ns"], r))
        self._on(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale", GET=self._read_scale, PATCH=self._patch_scale)
        self._on(f"/apis/{group}/(?P<resource>[^/]+)", GET=lambda r: self._custom(r, ""))
        self._on(f"/apis/{group}/namespaces/{ns}/(?P<resource>[^/]+)", GET=lambda r: self._custom(r, r.params["ns"]))
        self._on(f"/apis/{group}/namespaces/{ns}/(?P<resource>[^/]+)/{name}",
                 GET=lambda r: self._custom(r, r.params["ns"]))

    # -- discovery -------------------------------------------------------------------
    def _get_version(self, request: Request) -> Response:
        major, minor = self.version.lstrip("v").split(".")[:2]
        return _json(200, {"major": major, "minor": minor, "gitVersion": self.version,
                           "gitCommit": ko.hex_id(self.version)[:40], "gitTreeState": "clean",
                           "buildDate": "2025-05-15T08:27:33Z", "goVersion": "go1.24.2", "compiler": "gc",
                           "platform": "linux/amd64"})

    def _get_api_versions(self, request: Request) -> Response:
        return _json(200, {"kind": "APIVersions", "versions": ["v1"],
                           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host_ip}:6443"}]})

    def _served_groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {"apps": ["v1"]}  # built-in groups come first in /apis
        for g, v, _ in CUSTOM:
            if g not in self.removed_groups and v not in groups.setdefault(g, []):
                groups[g].append(v)
        return groups

    def _get_api_groups(self, request: Request) -> Response:
        groups = [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                   "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
                  for g, vs in self._served_groups().items()]
        return _json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    @staticmethod
    def _resource_list(group_version: str, kinds: list[Kind]) -> dict:
        resources = [{"name": k.resource, "singularName": k.kind.lower(), "namespaced": k.namespaced, "kind": k.kind,
                      "verbs": ["get", "list"]} for k in kinds]
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}

    def _get_core_resources(self, request: Request) -> Response:
        return _json(200, self._resource_list("v1", list(CORE.values())))

    def _get_group_resources(self, request: Request) -> Response:
        g, v = request.params["group"], request.params["version"]
        if (g, v) == ("apps", "v1"):
            body = self._resource_list("apps/v1", [DEPLOYMENTS])
            body["resources"][0]["verbs"] = ["get", "list", "patch"]
            body["resources"].append({"name": "deployments/scale", "singularName": "", "namespaced": True,
                                      "group": "autoscaling", "version": "v1", "kind": "Scale",
                                      "verbs": ["get", "patch", "update"]})
            return _json(200, body)
        kinds = [k for (kg, kv, _), k in CUSTOM.items() if (kg, kv) == (g, v) and g not in self.removed_groups]
        return _json(200, self._resource_list(f"{g}/{v}", kinds)) if kinds else Response(404, "404 page not found\n")

    # -- reads -----------------------------------------------------------------------
    def _read(self, kind: Kind, namespace: str, request: Request) -> Response:
        name = request.params["name"]
        with self._state:
            obj = self._get(kind, namespace, name)
            body = copy.deepcopy(obj) if obj else None
        if body is None:
            return _json(404, ko.not_found(kind.resource, name, kind.group))
        return _json(200, body)

    def _list(self, kind: Kind, namespace: str, request: Request) -> Response:
        try:
            labels = ko.parse_label_selector(request.arg("labelSelector", "") or "")
            fields = ko.parse_field_selector(request.arg("fieldSelector", "") or "")
        except ValueError as exc:
            return _json(400, ko.bad_request(str(exc)))
        allowed = ("metadata.name", "metadata.namespace") + kind.fields
        for f, _, _ in fields:
            if f not in allowed:
                return _json(400, ko.bad_request(f"field label not supported: {f}"))
        with self._state:
            store = self._objects.get(kind.key, {})
            keys = sorted(k for k in store if not namespace or k[0] == namespace)
            items = [copy.deepcopy(store[k]) for k in keys]
            rv = self._rv
        items = [o for o in items if all(r.matches(o["metadata"].get("labels", {})) for r in labels)
                 and all((ko.field_value(o, f) == v) == (op == "=") for f, op, v in fields)]
        return self._paginate(kind, items, rv, request)

    def _paginate(self, kind: Kind, items: list[dict], rv: int, request: Request) -> Response:
        start = 0
        token = request.arg("continue")
        if token:
            try:
                start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["start"])
            except (ValueError, KeyError, TypeError):
                return _json(400, ko.bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))
        limit = int(request.arg("limit") or 0)
        page = items[start:start + limit] if limit > 0 else items[start:]
        next_token, remaining = "", None
        if limit > 0 and start + limit < len(items):
            next_token = base64.urlsafe_b64encode(json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start + limit}).encode()).decode()
            remaining = len(items) - start - limit
        return _json(200, ko.list_of(f"{kind.kind}List", kind.api_version, page, rv, not kind.group, next_token, remaining))

    def _custom(self, request: Request, namespace: str) -> Response:
        g, v, resource = request.params["group"], request.params["version"], request.params["resource"]
        kind = CUSTOM.get((g, v, resource))
        if g in self.removed_groups or not any(g == cg for cg, _, _ in CUSTOM):
            return Response(404, "404 page not found\n")  # no CRD: the API group is not served at all
        if kind is None:
            return self.not_found(request)
        if request.params.get("name"):
            return self._read(kind, namespace, request)
        return self._list(kind, namespace, request)

    # -- writes ----------------------------------------------------------------------
    def _body(self, request: Request) -> tuple[dict | None, Response | None]:
        try:
            body = json.loads(request.body or b"")
        except ValueError as exc:
            return None, _json(400, ko.bad_request(f"couldn't get version/kind; json parse error: {exc}"))
        if not isinstance(body, dict):
            return None, _json(400, ko.bad_request("couldn't get version/kind; json parse error: not an object"))
        return body, None

    def _create_namespace(self, request: Request) -> Response:
        body, error = self._body(request)
        if error:
            return error
        name = body.get("metadata", {}).get("name", "")
        if not name:
            return _json(422, ko.invalid("Namespace", "", "metadata.name", "Required value: name or generateName is required",
                                         "FieldValueRequired"))
        problem = ko.name_error(name, label=True)
        if problem:
            return _json(422, ko.invalid("Namespace", name, "metadata.name", problem))
        with self._state:
            existing = self._get(CORE["namespaces"], "", name)
            if existing:
                return _json(409, ko.already_exists("namespaces", name,
                                                    being_deleted=bool(existing["metadata"].get("deletionTimestamp"))))
            obj = ko.namespace_obj(name, self._next_rv(), body.get("metadata", {}).get("labels"))
            if body.get("metadata", {}).get("annotations"):
                obj["metadata"]["annotations"] = dict(body["metadata"]["annotations"])
            if request.arg("dryRun") != "All":
                self._put(CORE["namespaces"], obj)
            return _json(201, copy.deepcopy(obj))

    def _delete_namespace(self, request: Request) -> Response:
        name = request.params["name"]
        if name in IMMORTAL_NAMESPACES:
            return _json(403, ko.forbidden("namespaces", name, "this namespace may not be deleted"))
        with self._state:
            ns = self._get(CORE["namespaces"], "", name)
            if ns is None:
                return _json(404, ko.not_found("namespaces", name))
            if ns["metadata"].get("deletionTimestamp"):
                return _json(409, ko.conflict("namespaces", name, NS_TERMINATING_CONFLICT))
            if request.arg("dryRun") == "All":
                return _json(200, copy.deepcopy(ns))
            ns["metadata"]["deletionTimestamp"] = ko.rfc3339()
            ns["status"]["phase"] = "Terminating"
            self._touch(ns)
            for (pod_ns, _), pod in self._objects.get("pods", {}).items():
                if pod_ns == name and not pod["metadata"].get("deletionTimestamp"):
                    self._mark_deleting(pod, 30)
            self._ns_deletions[name] = time.monotonic() + self.namespace_delete_delay
            return _json(200, copy.deepcopy(ns))

    def _create_pod(self, request: Request) -> Response:
        ns = request.params["ns"]
        pod, error = self._body(request)
        if error:
            return error
        m = pod.setdefault("metadata", {})
        if m.get("namespace") not in (None, "", ns):
            return _json(400, ko.bad_request("the namespace of the provided object does not match the namespace sent on the request"))
        name = m.get("name") or ""
        with self._state:
            namespace = self._get(CORE["namespaces"], "", ns)
            if namespace is None:
                return _json(404, ko.not_found("namespaces", ns))
            if namespace["metadata"].get("deletionTimestamp"):
                cause = [{"reason": "NamespaceTerminating", "message": f"namespace {ns} is being terminated",
                          "field": "metadata.namespace"}]
                return _json(403, ko.forbidden("pods", name,
                                               f"unable to create new content in namespace {ns} because it is being terminated",
                                               causes=cause))
            if not name and m.get("generateName"):
                name = ko.generated_name(m["generateName"])
            if not name:
                return _json(422, ko.invalid("Pod", "", "metadata.name", "Required value: name or generateName is required",
                                             "FieldValueRequired"))
            problem = ko.name_error(name, label=False)
            if problem:
                return _json(422, ko.invalid("Pod", name, "metadata.name", problem))
            if not pod.get("spec", {}).get("containers"):
                return _json(422, ko.invalid("Pod", name, "spec.containers", "Required value", "FieldValueRequired"))
            existing = self._get(CORE["pods"], ns, name)
            if existing:
                return _json(409, ko.already_exists("pods", name,
                                                    being_deleted=bool(existing["metadata"].get("deletionTimestamp"))))
            stored = ko.default_pod({"kind": "Pod", "apiVersion": "v1", "metadata": {}, "spec": copy.deepcopy(pod["spec"])})
            given = {k: v for k, v in m.items() if k in ("labels", "annotations", "ownerReferences", "finalizers")}
            stored["metadata"] = {**ko.meta(name, ns, self._next_rv()), **given}
            if m.get("generateName"):
                stored["metadata"]["generateName"] = m["generateName"]
            stored["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
            if request.arg("dryRun") == "All":
                return _json(201, stored)
            self._put(CORE["pods"], stored)
            self._start_clock(stored)
            return _json(201, copy.deepcopy(stored))

    def _create_configmap(self, request: Request) -> Response:
        """POST a ConfigMap: the namespace must exist and not be terminating; keys as IsConfigMapKey allows."""
        ns = request.params["ns"]
        body, error = self._body(request)
        if error:
            return error
        m = body.setdefault("metadata", {})
        name = m.get("name") or ""
        if m.get("namespace") not in (None, "", ns):
            return _json(400, ko.bad_request("the namespace of the provided object does not match the namespace sent on the request"))
        problem = ko.name_error(name, label=False) if name else "Required value: name or generateName is required"
        if problem:
            return _json(422, ko.invalid("ConfigMap", name, "metadata.name", problem))
        data = body.get("data") or {}
        for key in data:
            if not CONFIG_KEY.fullmatch(key):
                return _json(422, ko.invalid("ConfigMap", name, f"data[{key}]",
                                             "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"))
        if len(json.dumps(data)) > CONFIGMAP_MAX_BYTES:
            return _json(422, ko.invalid("ConfigMap", name, "", f"Too long: must have at most {CONFIGMAP_MAX_BYTES} bytes",
                                         "FieldValueTooLong"))
        with self._state:
            namespace = self._get(CORE["namespaces"], "", ns)
            if namespace is None:
                return _json(404, ko.not_found("namespaces", ns))
            if namespace["metadata"].get("deletionTimestamp"):
                return _json(403, ko.forbidden("configmaps", name,
                                               f"unable to create new content in namespace {ns} because it is being terminated"))
            if self._get(CORE["configmaps"], ns, name):
                return _json(409, ko.already_exists("configmaps", name))
            given = {k: v for k, v in m.items() if k in ("labels", "annotations")}
            stored = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {**ko.meta(name, ns, self._next_rv()), **given},
                      "data": dict(data)}
            if body.get("binaryData"):
                stored["binaryData"] = dict(body["binaryData"])
            if request.arg("dryRun") != "All":
                self._put(CORE["configmaps"], stored)
            return _json(201, copy.deepcopy(stored))

    def _delete_configmap(self, request: Request) -> Response:
        """DELETE a ConfigMap: gone at once; the answer is a Success Status (the store returns no deleted object)."""
        ns, name = request.params["ns"], request.params["name"]
        with self._state:
            cm = self._get(CORE["configmaps"], ns, name)
            if cm is None:
                return _json(404, ko.not_found("configmaps", name))
            if request.arg("dryRun") != "All":
                self._objects["configmaps"].pop((ns, name))
                self._next_rv()
        return _json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                           "details": {"name": name, "kind": "configmaps", "uid": cm["metadata"]["uid"]}})

    def _start_clock(self, pod: dict) -> None:
        names = [c["name"] for c in pod["spec"]["containers"]]
        runs = [ko.container_run(c) for c in pod["spec"]["containers"]]
        self._logs[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = {
            "current": {n: "".join(line + "\n" for line in lines) for n, (lines, _) in zip(names, runs)},
            "previous": {}}
        exits = pod["spec"]["restartPolicy"] != "Always" and all(code is not None for _, code in runs)
        start_at = time.monotonic() + self.pod_start_delay
        exit_code = max((code or 0 for _, code in runs), default=0)
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        self._clocks[key] = PodClock(start_at, start_at + self.pod_run_time if exits else None, exit_code)

    def start_now(self, namespace: str, name: str) -> None:
        """A pod held in ContainerCreating (a long pod_start_delay) starts at the next look, whatever the load."""
        with self._state:
            clock = self._clocks[(namespace, name)]
            run_time = None if clock.exit_at is None else clock.exit_at - clock.start_at
            clock.start_at = time.monotonic()
            clock.exit_at = None if run_time is None else clock.start_at + run_time

    def _mark_deleting(self, pod: dict, grace: int) -> None:
        pod["metadata"]["deletionTimestamp"] = ko.rfc3339(time.time() + grace)
        pod["metadata"]["deletionGracePeriodSeconds"] = grace
        self._touch(pod)

    def _delete_pod(self, request: Request) -> Response:
        ns, name = request.params["ns"], request.params["name"]
        options, error = self._body(request) if request.body.strip() else ({}, None)
        if error:
            return error
        grace_arg = request.arg("gracePeriodSeconds")
        with self._state:
            pod = self._get(CORE["pods"], ns, name)
            if pod is None:
                return _json(404, ko.not_found("pods", name))
            grace = int(grace_arg) if grace_arg is not None else options.get("gracePeriodSeconds")
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30) if grace is None else grace
            if not pod["spec"].get("nodeName") or pod["status"].get("phase") in ("Succeeded", "Failed"):
                grace = 0  # unscheduled or finished pods are deleted at once (podStrategy.CheckGracefulDelete)
            if request.arg("dryRun") == "All":
                return _json(200, copy.deepcopy(pod))
            if grace == 0:
                self._remove_pod((ns, name))
                return _json(200, copy.deepcopy(pod))
            if not pod["metadata"].get("deletionTimestamp"):
                self._mark_deleting(pod, grace)
                self._pod_deletions[(ns, name)] = time.monotonic() + self.pod_delete_delay
            return _json(200, copy.deepcopy(pod))

    # -- deployments -----------------------------------------------------------------
    def _roll_out(self, deployment: dict) -> None:
        """The controllers' work, done at once: pods match spec.replicas, status reports them."""
        m = deployment["metadata"]
        ns, name, replicas = m["namespace"], m["name"], deployment["spec"]["replicas"]
        template_hash = ko.pod_template_hash(m["uid"])
        owned = sorted(k for k, pod in self._objects.get("pods", {}).items()
                       if k[0] == ns and (pod["metadata"].get("labels") or {}).get("pod-template-hash") == template_hash
                       and not pod["metadata"].get("deletionTimestamp"))
        for key in owned[replicas:]:
            self._mark_deleting(self._objects["pods"][key], 30)
            self._pod_deletions[key] = time.monotonic() + self.pod_delete_delay
        template = deployment["spec"]["template"]
        rs = f"{name}-{template_hash}"
        for _ in range(replicas - len(owned)):
            pod = self.add_pod(ns, ko.generated_name(f"{rs}-"), containers=template["spec"]["containers"],
                               labels={**template["metadata"]["labels"], "pod-template-hash": template_hash})
            stored = self._get(CORE["pods"], ns, pod["metadata"]["name"])
            stored["metadata"]["generateName"] = f"{rs}-"
            stored["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                                      "uid": ko.new_uid(), "controller": True, "blockOwnerDeletion": True}]
        deployment["status"] = ko.deployment_status(deployment, replicas)
        self._touch(deployment)
        self._rollouts.pop((ns, name), None)

    def _read_scale(self, request: Request) -> Response:
        ns, name = request.params["ns"], request.params["name"]
        with self._state:
            deployment = self._get(DEPLOYMENTS, ns, name)
            if deployment is None:
                return _json(404, ko.not_found("deployments", name, "apps"))
            return _json(200, ko.scale_obj(deployment))

    def _patch_scale(self, request: Request) -> Response:
        """PATCH .../deployments/NAME/scale: json, merge or strategic-merge patch of the Scale; spec.replicas lands."""
        ns, name = request.params["ns"], request.params["name"]
        content_type = (_header(request, "Content-Type") or "").split(";")[0].strip()
        if content_type not in PATCH_TYPES:
            return _json(415, ko.status(415, "UnsupportedMediaType",
                                        "the body of the request was in an unknown format - accepted media types include: "
                                        + ", ".join(PATCH_TYPES)))
        if content_type == "application/apply-patch+yaml":
            return _json(415, ko.status(415, "UnsupportedMediaType", "server-side apply is not supported by FakeKubeAPI"))
        try:
            patch = json.loads(request.body or b"")
        except ValueError as exc:
            return _json(400, ko.bad_request(f"error decoding patch: {exc}"))
        with self._state:
            deployment = self._get(DEPLOYMENTS, ns, name)
            if deployment is None:
                return _json(404, ko.not_found("deployments", name, "apps"))
            current = ko.scale_obj(deployment)
            try:
                patched = ko.json_patch(current, patch) if content_type == PATCH_TYPES[0] else ko.merge_patch(current, patch)
            except (ValueError, TypeError, AttributeError):  # jsonpatch Apply failed: NewGenericServerResponse(422, ...)
                return _json(422, ko.status(422, "Invalid", "the server rejected our request due to an error in our request", {}))
            replicas = (patched.get("spec") or {}).get("replicas", 0)
            if not isinstance(replicas, int) or isinstance(replicas, bool):
                return _json(400, ko.bad_request(f"json: cannot unmarshal {type(replicas).__name__} into Go struct field "
                                                 "ScaleSpec.spec.replicas of type int32"))
            if replicas < 0:
                detail = f"Invalid value: {replicas}: must be greater than or equal to 0"
                return _json(422, ko.status(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: {detail}',
                                            {"name": name, "group": "autoscaling", "kind": "Scale", "causes": [
                                                {"reason": "FieldValueInvalid", "message": detail, "field": "spec.replicas"}]}))
            if request.arg("dryRun") == "All":
                return _json(200, {**current, "spec": {"replicas": replicas} if replicas else {}})
            if replicas != deployment["spec"]["replicas"]:
                deployment["spec"]["replicas"] = replicas
                deployment["metadata"]["generation"] += 1
                self._touch(deployment)
                self._rollouts[(ns, name)] = time.monotonic() + self.pod_start_delay
            return _json(200, ko.scale_obj(deployment))

    # -- pod logs --------------------------------------------------------------------
    def _read_log(self, request: Request) -> Response:
        ns, name = request.params["ns"], request.params["name"]
        previous = request.arg("previous") in ("true", "1")
        with self._state:
            pod = self._get(CORE["pods"], ns, name)
            if pod is None:
                return _json(404, ko.not_found("pods", name))
            pod = copy.deepcopy(pod)
            logs = copy.deepcopy(self._logs.get((ns, name), {}))
        names = [c["name"] for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]]
        container = request.arg("container") or ""
        if not container:
            if len(pod["spec"]["containers"]) != 1:
                return _json(400, ko.bad_request(
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"))
            container = names[-1]
        elif container not in names:
            return _json(400, ko.bad_request(f"container {container} is not valid for pod {name}"))
        if not pod["spec"].get("nodeName"):
            return Response(200, b"", "text/plain")  # not scheduled yet: the API server streams nothing
        text, error = self._container_log(pod, container, previous, logs)
        if error:
            return _json(400, ko.bad_request(error))
        return Response(200, self._shape_log(text, request).encode(), "text/plain")

    @staticmethod
    def _container_log(pod: dict, container: str, previous: bool, logs: dict) -> tuple[str, str]:
        """The kubelet's choice of log (current, last terminated) or its error text."""
        name = pod["metadata"]["name"]
        cs = next((s for s in pod["status"].get("containerStatuses", []) if s["name"] == container), None)
        if cs is None:
            return "", f'container "{container}" in pod "{name}" is not available'
        last = cs.get("lastState", {}).get("terminated")
        if previous:
            if not last or not last.get("containerID"):
                return "", f'previous terminated container "{container}" in pod "{name}" not found'
            return logs.get("previous", {}).get(container, ""), ""
        state = cs.get("state", {})
        if "running" in state or "terminated" in state:
            return logs.get("current", {}).get(container, ""), ""
        if last:
            return logs.get("previous", {}).get(container, ""), ""
        reason = state.get("waiting", {}).get("reason", "")
        detail = {"ErrImagePull": "image can't be pulled",
                  "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
        return "", f'container "{container}" in pod "{name}" is waiting to start: {detail}'

    @staticmethod
    def _shape_log(text: str, request: Request) -> str:
        lines = text.splitlines(keepends=True)
        tail = request.arg("tailLines")
        if tail is not None and tail.lstrip("-").isdigit() and int(tail) >= 0:
            lines = lines[len(lines) - int(tail):] if int(tail) else []
        if request.arg("timestamps") in ("true", "1"):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
            lines = [f"{stamp} {line}" for line in lines]
        out = "".join(lines)
        limit = request.arg("limitBytes")
        return out[: int(limit)] if limit and limit.isdigit() else out

    # -- service proxy ---------------------------------------------------------------
    def _proxy(self, request: Request) -> Response:
        ns, rest = request.params["ns"], request.params.get("rest") or ""
        service_id = unquote(request.params["id"])  # clients send `prom%3A9090`; the API server decodes it
        parsed = split_scheme_name_port(service_id)
        if parsed is None:
            return _json(400, ko.bad_request(f'invalid service request "{service_id}"'))
        scheme, name, port = parsed
        with self._state:
            svc = self._get(CORE["services"], ns, name)
            ports = copy.deepcopy(self._services.get((ns, name)))
            if port.isdigit():
                if svc is None:
                    return _json(404, ko.not_found("services", name))
                match = [p for p in svc["spec"]["ports"] if p["port"] == int(port)]
                if not match:
                    return _json(503, ko.service_unavailable(f'no service port {int(port)} found for service "{name}"'))
                port = match[0].get("name", "")
        if svc is None or ports is None:
            return _json(404, ko.not_found("endpoints", name))  # a name-addressed port is looked up in Endpoints
        if not ports.ready or not ports.backends:
            return _json(503, ko.service_unavailable(f'no endpoints available for service "{name}"'))
        backend = ports.backends.get(port)
        if backend is None:
            return _json(503, ko.service_unavailable(f'no endpoints available for service "{service_id}"'))
        if not rest and request.method in ("GET", "HEAD"):
            query = f"?{request.raw_query}" if request.raw_query else ""
            return Response(301, b"", "text/html; charset=utf-8", {"Location": request.path + "/" + query})
        return self._forward(request, backend, rest or "/", scheme)

    def _forward(self, request: Request, backend: str, rest: str, scheme: str) -> Response:
        """Send the request on to the backend and relay its answer, or the proxy's 503."""
        target = urlsplit(backend)
        host, port = target.hostname or "127.0.0.1", target.port or 80
        if scheme == "https" and target.scheme == "http":
            return _json(503, ko.service_unavailable(
                "error trying to reach service: tls: first record does not look like a TLS handshake"))
        # Go proxies the decoded path (a client's %2F becomes /) re-escaped by URL.EscapedPath.
        path = target.path.rstrip("/") + quote(unquote(rest), safe="/$&+,:;=@")
        if request.raw_query:
            path += "?" + request.raw_query
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Forwarded-For"] = "127.0.0.1"
        if _header(request, "Upgrade"):
            return self._upgrade(request, host, port, path, headers)
        conn = http.client.HTTPConnection(host, port, timeout=self.proxy_timeout)
        try:
            try:
                conn.connect()
            except ConnectionRefusedError:
                return self._unreachable(f"dial tcp {host}:{port}: connect: connection refused")
            except TimeoutError:
                return self._unreachable(f"dial tcp {host}:{port}: i/o timeout")
            try:
                conn.request(request.method, path, body=request.body or None, headers=headers)
                upstream = conn.getresponse()
                payload = upstream.read()
            except TimeoutError:
                return self._unreachable("net/http: timeout awaiting response headers")
            except http.client.RemoteDisconnected:
                return self._unreachable("EOF")  # Go's error when the backend closes without answering
            except (OSError, http.client.HTTPException) as exc:
                return self._unreachable(str(exc))  # not Go's wording: an unmodelled transport failure
        finally:
            conn.close()
        relayed = {k: v for k, v in upstream.getheaders()
                   if k.lower() not in HOP_BY_HOP | {"content-type", "date", "server"}}
        return Response(upstream.status, payload, upstream.getheader("Content-Type") or "", relayed)

    # -- websocket upgrades through the service proxy (the real one's UpgradeAwareHandler) ----------------
    def answer(self, request: Request, handler: Any) -> Response | None:
        """A GET with `Upgrade:` goes through auth and the proxy like any other; a 101 from the backend
        turns the connection into a tunnel between client and backend, anything else is relayed."""
        response = super().answer(request, handler)
        if request.method == "GET" and isinstance(response, _Tunnel):
            handler.close_connection = True
            response.splice(handler.connection, handler.rfile)
            return None
        return response

    def _upgrade(self, request: Request, host: str, port: int, path: str, headers: dict[str, str]) -> Response:
        """Send the upgrade request on with its Connection/Upgrade headers; tunnel on 101, else relay."""
        try:
            backend = socket.create_connection((host, port), timeout=self.proxy_timeout)
        except ConnectionRefusedError:
            return self._unreachable(f"dial tcp {host}:{port}: connect: connection refused")
        except OSError as exc:
            return self._unreachable(str(exc))
        headers = {**headers, "Connection": "Upgrade", "Upgrade": _header(request, "Upgrade") or "",
                   "Host": f"{host}:{port}"}
        head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        try:
            backend.sendall(head.encode())
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = backend.recv(65536)
                if not chunk:
                    backend.close()
                    return self._unreachable("EOF")
                received += chunk
        except OSError as exc:
            backend.close()
            return self._unreachable(str(exc))
        raw_head, rest = received.split(b"\r\n\r\n", 1)
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        answer = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        if status == 101:
            backend.settimeout(None)
            return _Tunnel(backend, received)
        size = int(next((v for k, v in answer.items() if k.lower() == "content-length"), "0"))
        while len(rest) < size:
            chunk = backend.recv(65536)
            if not chunk:
                break
            rest += chunk
        backend.close()
        relayed = {k: v for k, v in answer.items() if k.lower() not in HOP_BY_HOP | {"content-type", "date", "server"}}
        ctype = next((v for k, v in answer.items() if k.lower() == "content-type"), "")
        return Response(status, rest[:size], ctype, relayed)

    @staticmethod
    def _unreachable(detail: str) -> Response:
        return _json(503, ko.service_unavailable(f"error trying to reach service: {detail}"))


class _Tunnel(Response):
    """A backend that answered 101: its answer goes to the client, then bytes flow both ways until one side ends."""

    def __init__(self, backend: socket.socket, answer: bytes) -> None:
        super().__init__(101)
        self.backend, self.answer = backend, answer

    def splice(self, client: socket.socket, client_reader: Any) -> None:
        client.sendall(self.answer)

        def upstream() -> None:  # what the client sends (buffered in its reader) goes to the backend
            try:
                while chunk := client_reader.read1(65536):
                    self.backend.sendall(chunk)
            except (OSError, ValueError):  # ValueError: the handler closed the reader after the backend ended
                pass
            _shut(self.backend)

        threading.Thread(target=upstream, name="kubeapi-tunnel", daemon=True).start()
        try:
            while chunk := self.backend.recv(65536):
                client.sendall(chunk)
        except OSError:
            pass
        _shut(client)
        self.backend.close()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass

