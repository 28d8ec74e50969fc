"""FakeKiali: what kiali/kiali v2.29.0 answers under web_root /kiali with the anonymous strategy.

Configured from a spec of clusters -> namespaces -> workloads:

    {"oke": {"home": True, "namespaces": {"istio-system": {"controlPlane": True, "workloads": [{"name": "istiod"}]}}},
     "workstation": {"apiEndpoint": "https://172.18.0.3:6443", "namespaces": {...}}}

Held to the recording of a real Kiali v2.29.0 (../shared/contracts/kiali-2.29.0, replayed by tests/test_kiali_contract.py
with the recorded clusters as its spec) and to that file's table of handler facts. Facts the fault switches model (kiali/kiali v2.29.0):
- istio/discovery.go Clusters: a cluster is listed with accessible:true for each loaded remote secret (and the
  home); accessible:false only for a `clustering.clusters` entry without secret_name (no kubeconfig, so no
  apiEndpoint or secretName). kubernetes/cluster_secret.go skips a secret whose kubeconfig has not exactly one
  cluster: the cluster is then not listed at all.
- Remote secrets (`mounts`): Kiali reads /kiali-remote-cluster-secrets/<secret>/<key> once, at start (the operator
  mounts the Secrets labelled kiali.io/multiCluster=true; a deleted one stays loaded until the next start). At start
  it builds a REST mapping with every cluster's client (server groups, GET <server>/api): a remote answering 401 or
  refusing the connection makes Kiali exit (FTL `failed to determine if *v1.Pod is namespaced: ...`, recorded against
  v2.29.0): nothing listens. While running, a remote answering 401 stays listed accessible, but its namespaces and
  workloads are silently empty (200) and /api/status has no `Kubernetes-<remote>`; the log says
  `Error fetching Namespaces for cluster [<remote>]: Unauthorized`.
- handlers/workloads.go ClusterWorkloads ignores the namespace lookup's error: an unknown or inaccessible
  clusterName is 200 with no workloads.
- config/istio/util.go: without kubernetes_config.cluster_name Kiali names its home "Kubernetes".
- Tracing (handlers/tracing.go, business/tracing.go, tracing/jaeger/http_client.go): with `tracing_url` set (the CR's
  external_services.tracing enabled, use_grpc false, internal_url) service traces are read from that Jaeger's
  /api/traces as Kiali's HTTP client asks: service `<app>.<namespace>` (namespace_selector, default true), tags
  {"istio.cluster_id": clusterName}; a failed read is 503 {"error": Go's error text}. Without it, /api/tracing says
  enabled false and the traces endpoints answer 503 "tracing is not enabled".
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

import httpx
import yaml

from tests import web
from tests.fakes.server import FakeServer, Request, Response

# config/config.go AddHealthDefault, appended to the operator's `health_config.rate: []` on each config.Set: the
# server publishes it twice (recorded).
DEFAULT_TOLERANCE = {"tolerance": [
    {"code": "5XX", "degraded": 0, "failure": 10, "protocol": "http", "direction": ".*"},
    {"code": "4XX", "degraded": 10, "failure": 20, "protocol": "http", "direction": ".*"},
    {"code": "^[1-9]$|^1[0-6]$", "degraded": 0, "failure": 10, "protocol": "grpc", "direction": ".*"},
    {"code": "^-$", "degraded": 0, "failure": 10, "protocol": "http|grpc", "direction": ".*"},
]}
DEFAULT_HEALTH_RATE = [DEFAULT_TOLERANCE, DEFAULT_TOLERANCE]
# config/config.go: the canonical app and version label names Kiali tries, in order (istiod's recorded versionLabel
# true comes from app.kubernetes.io/version).
APP_LABELS = ("app.kubernetes.io/name", "app", "service.istio.io/canonical-name")
VERSION_LABELS = ("app.kubernetes.io/version", "version", "service.istio.io/canonical-revision")
UNDETECTED_HOME = "Kubernetes"  # config.DefaultClusterID
IN_CLUSTER_API = "https://10.96.0.1:443"  # the home's apiEndpoint as a pod sees it (kind's in-cluster address)
# kiali-operator v2.29.0 roles/default/kiali-deploy/defaults/main.yml, as /api/config publishes kiali_feature_flags.
UI_DEFAULTS = {
    "graph": {"findOptions": [{"description": "Find: slow edges (> 1s)", "expression": "rt > 1000"},
                              {"description": "Find: unhealthy nodes", "expression": "! healthy"},
                              {"description": "Find: unknown nodes", "expression": "name = unknown"},
                              {"description": "Find: nodes with the 2 top rankings", "expression": "rank <= 2"}],
              "hideOptions": [{"description": "Hide: healthy nodes", "expression": "healthy"},
                              {"description": "Hide: unknown nodes", "expression": "name = unknown"},
                              {"description": "Hide: nodes ranked lower than the 2 top rankings", "expression": "rank > 2"}],
              "settings": {"animation": "point"},
              "traffic": {"ambient": "total", "grpc": "requests", "http": "requests", "tcp": "sent"}},
    "i18n": {"language": "en", "showSelector": False},
    "list": {"includeHealth": True, "includeIstioResources": True, "includeValidations": True, "showIncludeToggles": False},
    "mesh": {"findOptions": [{"description": "Find: unhealthy nodes", "expression": "! healthy"}],
             "hideOptions": [{"description": "Hide: healthy nodes", "expression": "healthy"}]},
    "metricsInbound": {}, "metricsOutbound": {}, "metricsPerRefresh": "1m", "refreshInterval": "1m",
    "tracing": {"limit": 100},
}
VALIDATIONS = {"SkipWildcardGatewayHosts": False, "ignore": ["KIA1301"]}
# external_services.tracing.tempo_config as the operator renders it (url_format grafana); TempoConfig is published
# whatever the provider.
TEMPO_CONFIG = {"cacheCapacity": 200, "cacheEnabled": True, "urlFormat": "grafana"}
# cmd/server.go: the REST mapping built over every cluster's client at start; a failure is fatal (recorded).
REST_MAPPING_FTL = "failed to determine if *v1.Pod is namespaced: failed to get restmapping: failed to get server groups: "
ASKED_FOR_CREDENTIALS = "the server has asked for the client to provide credentials"  # client-go's text for a 401

Mounts = Callable[[], dict[str, dict[str, str]]]  # secret name -> {data key: kubeconfig}, as the operator mounts them


@dataclass(frozen=True)
class RemoteClient:
    """The service-account client Kiali builds from one mounted remote secret (kubernetes/cluster_secret.go)."""

    secret: str
    server: str  # the kubeconfig's, as Kiali reports it (apiEndpoint)
    token: str
    dialled: str  # where the pod's network takes `server` (FakeKiali.hosts)

    def get(self, path: str) -> httpx.Response:
        return web.get(self.dialled + path, headers={"Authorization": f"Bearer {self.token}"}, verify=False, timeout=5)

    def start_error(self) -> str | None:
        """Why the REST mapping cannot be built over this client (Kiali then exits), or None."""
        try:
            answer = self.get("/api")
        except httpx.ConnectError:
            parts = urlsplit(self.server)
            address = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
            return REST_MAPPING_FTL + f'Get "{self.server}/api": dial tcp {address}: connect: connection refused'
        except httpx.TransportError as e:
            return REST_MAPPING_FTL + f'Get "{self.server}/api": {e}'
        return REST_MAPPING_FTL + ASKED_FOR_CREDENTIALS if answer.status_code == 401 else None

    def read_error(self) -> str | None:
        """Why listing the cluster's namespaces fails now (kubernetes/cache: the remote's informers), or None."""
        try:
            answer = self.get("/api/v1/namespaces")
        except httpx.TransportError as e:
            return str(e) or type(e).__name__
        return None if answer.status_code == 200 else {401: "Unauthorized", 403: "Forbidden"}.get(answer.status_code, str(answer.status_code))


def remote_clients(mounted: dict[str, dict[str, str]], dial: Callable[[str], str]) -> dict[str, RemoteClient]:
    """cluster_secret.go getRemoteClusterInfosFromDir: one cluster per data key; a kubeconfig without exactly one
    cluster, or without a user, loads nothing."""
    clients = {}
    for secret, keys in sorted(mounted.items()):
        for key, text in sorted(keys.items()):
            try:
                doc = yaml.safe_load(text) or {}
            except yaml.YAMLError:
                continue
            clusters, users = doc.get("clusters") or [], doc.get("users") or []
            if len(clusters) != 1 or not users:
                continue
            server = str((clusters[0].get("cluster") or {}).get("server", "")).rstrip("/")
            token = str((users[0].get("user") or {}).get("token", ""))
            clients[key] = RemoteClient(secret, server, token, dial(server))
    return clients


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeKiali(FakeServer):
    """Kiali on loopback; clusters spec as in the module docstring.

    mounts: the remote secrets as the operator mounts them, read at each start; None keeps every spec cluster a remote
    that always answers (no API server behind it). on_start: called after each start, served or exited; on_log: with
    each log line."""

    def __init__(self, clusters: dict[str, dict[str, Any]], web_root: str = "/kiali", version: str = "v2.29.0",
                 kiali_namespace: str = "monitoring", prometheus_version: str = "3.14.0",
                 kubernetes_version: str = "v1.35.0", grafana_version: str | None = "13.2.0",
                 mounts: Mounts | None = None, mesh_id: str = "mesh1") -> None:
        super().__init__()
        self.clusters = clusters
        self.web_root = web_root.rstrip("/")
        self.version = version
        self.kiali_namespace = kiali_namespace  # where the bring-up's Kiali CR (and so its Service) lives
        self.prometheus_version = prometheus_version
        self.kubernetes_version = kubernetes_version
        self.grafana_version = grafana_version  # None: Grafana does not answer (no version in /api/status)
        self.mounts = mounts
        self.mesh_id = mesh_id
        self.exited: str | None = None  # the fatal log line's message when the last start failed: nothing listens
        self.log_lines: list[str] = []
        self.on_start: Callable[[FakeKiali], None] | None = None
        self.on_log: Callable[[str], None] | None = None  # each line as Kiali prints it (its container's log)
        self._clients: dict[str, RemoteClient] | None = None  # with mounts: the remotes loaded at start
        # Fault switches -------------------------------------------------------
        self.inaccessible: set[str] = set()  # in clustering.clusters without secret_name: listed, accessible:false
        self.hidden: set[str] = set()  # no (usable) remote secret: not listed at all (docs/troubleshooting.md#kiali-cannot-reach-the-remote-cluster)
        self.home_name: str | None = None  # kubernetes_config.cluster_name unset or wrong: the home's name in Kiali
        self.tracing_url: str | None = None  # external_services.tracing.internal_url; None: tracing.enabled false
        self.hosts: dict[str, str] = {}  # "host:port" -> base URL: where the pod's network takes an address
        api = self.web_root + "/api"
        self.route("GET", api + "/config", self._config)
        self.route("GET", api + "/namespaces", self._namespaces)
        self.route("GET", api + "/clusters/workloads", self._workloads)
        self.route("GET", api + "/mesh/graph", self._mesh_graph)
        self.route("GET", api + "/status", self._status)
        self.route("GET", api + "/tracing", self._tracing_info)
        self.route("GET", api + r"/namespaces/(?P<namespace>[^/]+)/services/(?P<service>[^/]+)/traces", self._service_traces)

    # -- lifecycle -------------------------------------------------------------------
    def log(self, level: str, message: str) -> None:
        """One line of Kiali's text log (LOG_FORMAT=text: time, level, message)."""
        line = f"{datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')} {level} {message}"
        self.log_lines.append(line)
        if self.on_log:
            self.on_log(line)

    def start(self) -> "FakeKiali":
        """cmd/server.go: load the mounted remote secrets, build the REST mapping over every client, then serve."""
        self.bind_port = self.bind_port or free_port()
        self.exited = None
        self.log("INF", f"Kiali: Version: {self.version}, Commit: 0e41713fc1f3d5491250b4771151d37f3c2faf40")
        if self.mounts is not None:
            self._clients = remote_clients(self.mounts(), lambda url: self._dialled(url)[0])
            self.exited = next((e for e in (c.start_error() for c in self._clients.values()) if e), None)
        if self.exited:
            self.log("FTL", self.exited)
        else:
            super().start()  # on bind_port, chosen once: the same port across restarts, as a Service's
        if self.on_start:
            self.on_start(self)
        return self

    def restart(self) -> "FakeKiali":
        """The operator's rollout: the pod starts again and reads its mounts anew."""
        super().stop()
        return self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.bind_port}"

    # -- model ---------------------------------------------------------------------
    def _spec_home(self) -> str:
        return next((name for name, c in self.clusters.items() if c.get("home")), next(iter(self.clusters)))

    def _spec(self, name: str) -> dict[str, Any]:
        return self.clusters.get(name) or {}

    def _loaded(self) -> list[str]:
        """The home and the remotes Kiali has a kubeconfig for (the mounted secrets, else the spec's clusters)."""
        home = self._spec_home()
        remotes = list(self._clients) if self._clients is not None else [n for n in self.clusters if n != home]
        return [home] + [n for n in remotes if n != home]

    def _names(self) -> dict[str, str]:
        """Kiali's name for each cluster that Kiali lists (spec name -> Kiali name)."""
        home = self._spec_home()
        return {name: (self.home_name or name) if name == home else name
                for name in self._loaded() if name not in self.hidden}

    def _by_kiali_name(self, kiali_name: str) -> str | None:
        return next((spec for spec, name in self._names().items() if name == kiali_name), None)

    def _has_client(self, spec_name: str) -> bool:
        """A service-account client exists: the home, or a remote whose secret loaded."""
        return spec_name in self._names() and (spec_name == self._spec_home() or spec_name not in self.inaccessible)

    def _reads(self, spec_name: str) -> bool:
        """The cluster's client can list now; a remote whose API server refuses it is logged and left out."""
        if not self._has_client(spec_name):
            return False
        client = (self._clients or {}).get(spec_name)
        error = client.read_error() if client else None
        if error:
            self.log("ERR", f"Error fetching Namespaces for cluster [{spec_name}]: {error}")
        return error is None

    def _kube_cluster(self, spec_name: str) -> dict[str, Any]:
        """models/mesh.go KubeCluster, as istio/discovery.go Clusters fills it."""
        spec = self._spec(spec_name)
        name = self._names()[spec_name]
        if not self._has_client(spec_name):
            return {"accessible": False, "apiEndpoint": "", "isKialiHome": False, "kialiInstances": None,
                    "name": name, "secretName": ""}
        home = spec_name == self._spec_home()
        client = (self._clients or {}).get(spec_name)
        instances = None  # discoverKiali: no Service labelled app.kubernetes.io/part-of=kiali -> nil
        if home:
            instances = [{"namespace": self.kiali_namespace, "operatorResource": "", "serviceName": "kiali",
                          "url": "", "version": self.version}]
        endpoint = client.server if client else spec.get("apiEndpoint", IN_CLUSTER_API if home else f"https://{spec_name}:6443")
        secret = client.secret if client else spec.get("secretName", f"kiali-remote-cluster-secret-{spec_name}")
        return {"accessible": True, "apiEndpoint": endpoint, "isKialiHome": home, "kialiInstances": instances,
                "name": name, "secretName": "" if home else secret}

    def _namespace(self, cluster: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """models/namespace.go CastNamespace, plus the control-plane flags of business/namespaces.go."""
        labels = {"kubernetes.io/metadata.name": name, **spec.get("labels", {})}
        ns: dict[str, Any] = {"name": name, "cluster": cluster,
                              "isAmbient": labels.get("istio.io/dataplane-mode") == "ambient",
                              "isControlPlane": bool(spec.get("controlPlane", False)), "labels": labels,
                              "annotations": dict(spec["annotations"]) if spec.get("annotations") else None}
        revision = ""
        if labels.get("istio-injection") == "enabled":
            revision = "default"
        elif labels.get("istio-injection") != "disabled" and "istio.io/rev" in labels:
            revision = labels["istio.io/rev"]
        if spec.get("controlPlane"):
            revision = spec.get("revision", "default")
        if revision:
            ns["revision"] = revision
        return ns

    def _workload(self, cluster: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
        """models/workload.go WorkloadListItem of a Deployment, health and Istio resources not asked for: list items
        carry no templateLabels (never set on them) and dashboardAnnotations is nil (recorded)."""
        labels = dict(spec.get("labels", {"app": spec["name"], "version": "v1"}))
        pods = int(spec.get("podCount", 1))
        item: dict[str, Any] = {
            "name": spec["name"], "namespace": namespace, "cluster": cluster,
            "gvk": {"Group": "apps", "Version": "v1", "Kind": "Deployment"},
            "createdAt": "2024-01-01T00:00:00Z", "resourceVersion": "1",
            "istioSidecar": bool(spec.get("istioSidecar", True)), "isAmbient": False,
            "isGateway": bool(spec.get("isGateway", False)), "isWaypoint": False, "isZtunnel": False,
            "additionalDetailSample": None, "labels": labels, "appLabel": any(k in labels for k in APP_LABELS),
            "versionLabel": any(k in labels for k in VERSION_LABELS), "podCount": pods,
            "annotations": dict(spec.get("annotations", {"deployment.kubernetes.io/revision": "1"})),
            "healthAnnotations": {}, "istioReferences": [], "dashboardAnnotations": None,
            "serviceAccountNames": [spec.get("serviceAccount", "default")] if pods else [],
            "health": {"requests": {"healthAnnotations": {}, "inbound": {}, "outbound": {}}, "workloadStatus": None},
            "waypointWorkloads": None, "ValidationKey": "", "ValidationVersion": "",
        }
        if spec.get("templateAnnotations"):
            item["templateAnnotations"] = dict(spec["templateAnnotations"])
        return item

    # -- handlers ------------------------------------------------------------------------
    def _config(self, request: Request) -> Response:
        """handlers/config.go Config: PublicConfig with its omitempty fields left out when zero."""
        names = self._names()
        clusters = {names[spec]: self._kube_cluster(spec) for spec in sorted(names, key=names.get)}
        control_planes = {names[spec]: ns for spec in names if self._has_client(spec)
                          for ns, nspec in self._spec(spec).get("namespaces", {}).items() if nspec.get("controlPlane")}
        body: dict[str, Any] = {
            "authStrategy": "anonymous",
            "chatAI": {"enabled": False, "defaultProvider": "", "providers": [], "store": {"enabled": False}},
            "clusters": clusters,
            "clusterWideAccess": True,
            "deployment": {},
            "healthConfig": {"compute": {"duration": "5m", "refreshInterval": "3m", "timeout": "10m"},
                             "rate": DEFAULT_HEALTH_RATE},
            "istioAnnotations": {"ambientAnnotation": "ambient.istio.io/redirection",
                                 "ambientAnnotationEnabled": "enabled",
                                 "istioInjectionAnnotation": "sidecar.istio.io/inject"},
            "istioAPIInstalled": True,
            "istioGatewayInstalled": True,
            "istioIdentityDomain": "svc.cluster.local",
            "istioLabels": {"appLabelName": "", "versionLabelName": ""},
            "istioStatusEnabled": True,
            "kialiFeatureFlags": {"authz": {}, "clustering": {"enable_exec_provider": False},
                                  "istioAnnotationAction": True, "istioInjectionAction": True,
                                  "istioUpgradeAction": False, "uiDefaults": UI_DEFAULTS, "validations": VALIDATIONS},
            "logLevel": "info",
            "prometheus": {"enabled": True, "globalScrapeInterval": 30, "storageTsdbRetention": 864000},
            "runMode": "app",
        }
        if control_planes:
            body["controlPlanes"] = control_planes
        return Response(200, body)

    def _namespaces(self, request: Request) -> Response:
        """handlers/namespaces.go NamespaceList: every cluster whose client can list; a remote's error is skipped."""
        names = self._names()
        out = [self._namespace(names[spec], name, nspec)
               for spec in names if self._reads(spec)
               for name, nspec in self._spec(spec).get("namespaces", {}).items()]
        return Response(200, out)

    def _workloads(self, request: Request) -> Response:
        """handlers/workloads.go ClusterWorkloads: clusterName defaults to the home; unknown or unreadable -> 200, none."""
        cluster = request.arg("clusterName") or self._names()[self._spec_home()]
        wanted = [n for n in (request.arg("namespaces") or "").split(",") if n]
        spec = self._by_kiali_name(cluster)
        workloads = []
        if spec is not None and self._reads(spec):
            for ns, nspec in self._spec(spec).get("namespaces", {}).items():
                if wanted and ns not in wanted:
                    continue
                workloads += [self._workload(cluster, ns, w) for w in nspec.get("workloads", [])]
        return Response(200, {"cluster": cluster, "workloads": workloads, "validations": {}})

    def _mesh_graph(self, request: Request) -> Response:
        """mesh/api: external box (Prometheus, Grafana, the tracing store), a box and Data Plane per listed cluster,
        Kiali and istiod in namespace boxes of the home. Edges: Kiali to each infra node, istiod to each Data Plane."""
        names = self._names()
        home = self._spec_home()
        nodes = [self._infra("_external_", "External Deployments", "cluster", "", box="cluster", inaccessible=True),
                 self._infra("_external_", "Prometheus", "metricStore", "", inaccessible=True),
                 self._infra("_external_", "Grafana", "grafana", "", inaccessible=True,
                             health="Healthy" if self.grafana_version else "Unreachable")]
        if self.tracing_url:
            nodes.append(self._infra("_external_", "jaeger", "traceStore", "", inaccessible=True))
        planes = 0
        for spec in names:
            cluster = names[spec]
            nodes += [self._infra(cluster, cluster, "cluster", "", box="cluster"),
                      self._infra(cluster, "Data Plane", "dataplane", "")]
            if spec != home:
                continue
            boxes = {self.kiali_namespace}
            nodes.append(self._infra(cluster, "kiali", "kiali", self.kiali_namespace))
            for ns, nspec in self._spec(spec).get("namespaces", {}).items():
                if nspec.get("controlPlane"):
                    planes += 1
                    boxes.add(ns)
                    nodes.append(self._infra(cluster, "istiod", "istiod", ns, health=nspec.get("istiodHealth", "Healthy")))
            nodes += [self._infra(cluster, ns, "namespace", ns, box="namespace", health=None) for ns in sorted(boxes)]
        infra = [n for n in nodes if n["data"]["nodeType"] == "infra" and n["data"]["infraType"] not in ("kiali", "dataplane")]
        edge_count = len(infra) + planes * len(names)
        for i, node in enumerate(nodes):
            node["data"]["id"] = f"n{i}"
        edges = [{"data": {"id": f"e{i}"}} for i in range(edge_count)]
        return Response(200, {"elements": {"nodes": nodes, "edges": edges}, "meshNames": [self.mesh_id],
                              "timestamp": int(time.time())})

    @staticmethod
    def _infra(cluster: str, name: str, infra_type: str, namespace: str, *, box: str = "", inaccessible: bool = False,
               health: str | None = "Healthy") -> dict[str, Any]:
        data: dict[str, Any] = {"cluster": cluster, "infraName": name, "infraType": infra_type, "namespace": namespace,
                                "nodeType": "box" if box else "infra", "healthData": health}
        if box:
            data["isBox"] = box
        if inaccessible:
            data["isInaccessible"] = True
        return {"data": data}

    def _status(self, request: Request) -> Response:
        """handlers/root.go Root -> status/status.go Get; externalServices from status/versions.go (a version it
        cannot read is left out; a cluster whose client fails is not listed)."""
        names = self._names()
        services = [{"name": f"Kubernetes-{names[spec]}", "version": self.kubernetes_version, "tempoConfig": {}}
                    for spec in names if self._reads(spec)]
        services.append({"name": "Prometheus", "version": self.prometheus_version, "tempoConfig": {}})
        grafana = {"name": "Grafana", "tempoConfig": {}}  # the CR enables it
        services.append({**grafana, "version": self.grafana_version} if self.grafana_version else grafana)
        if self.tracing_url:
            services.append({"name": "jaeger", "tempoConfig": TEMPO_CONFIG})
        return Response(200, {
            "status": {"Kiali commit hash": "0e41713fc1f3d5491250b4771151d37f3c2faf40",
                       "Kiali container version": self.version, "Kiali state": "running",
                       "Kiali version": self.version, "Disabled features": ""},
            "externalServices": services,
            "warningMessages": [],
            "istioEnvironment": {"istioAPIEnabled": True},
        })

    # -- tracing (handlers/tracing.go) -----------------------------------------------------
    def _tracing_info(self, request: Request) -> Response:
        """GetTracingInfo: models.TracingInfo; the disabled answer leaves every field at its zero value."""
        if self.tracing_url is None:
            return Response(200, {"enabled": False, "integration": False, "internalURL": "", "provider": "",
                                  "tempoConfig": {}, "url": "", "namespaceSelector": False, "useWaypointName": False,
                                  "whiteListIstioSystem": None})
        # config/config.go NewConfig defaults: provider jaeger, namespace_selector true; the operator's tempo_config.
        return Response(200, {"enabled": True, "integration": True, "internalURL": self.tracing_url, "provider": "jaeger",
                              "tempoConfig": TEMPO_CONFIG, "url": "",
                              "namespaceSelector": True, "useWaypointName": False,
                              "whiteListIstioSystem": ["jaeger-query", "istio-ingressgateway"]})

    def _dialled(self, url: str) -> tuple[str, str]:
        """(the URL as dialled, the address Go's error names: the mapped host, the URL's port), through `hosts`."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        base = self.hosts.get(f"{parts.hostname}:{port}")
        if base is None:
            return url, f"{parts.hostname}:{port}"
        return base.rstrip("/") + url[len(f"{parts.scheme}://{parts.netloc}"):], f"{urlsplit(base).hostname}:{port}"

    def _service_traces(self, request: Request) -> Response:
        """ServiceTraces -> TracingService.GetServiceTraces -> JaegerHTTPClient.GetAppTracesHTTP (no waypoint: the
        lookup is the service's app label, here the service's own name as in the stack's sample)."""
        if self.tracing_url is None:
            return Response(503, {"error": "tracing is not enabled"})  # business/tracing.go client()
        ns, service = request.params["namespace"], request.params["service"]
        cluster = request.arg("clusterName") or self._names()[self._spec_home()]
        start_us = int(request.arg("startMicros") or 0)  # readQuery: zero time when absent
        end_us = int(request.arg("endMicros") or time.time() * 1e6)
        # prepareQuery: start/end in whole seconds (Unix() * 1e6), tags JSON-encoded, limit (default 100); Go's
        # url.Values.Encode sorts the keys.
        params = {"end": str(end_us // 1_000_000 * 1_000_000), "limit": request.arg("limit") or "100",
                  "service": f"{service}.{ns}", "start": str(start_us // 1_000_000 * 1_000_000),
                  "tags": json.dumps({"istio.cluster_id": cluster}, separators=(",", ":"))}
        url = self.tracing_url.rstrip("/") + "/api/traces?" + urlencode(params)
        dialled, address = self._dialled(url)
        try:
            r = web.get(dialled, headers={"Accept": "application/json"}, timeout=5)
            body = r.json()
        except httpx.ConnectError:  # net/http's client.Do error
            return Response(503, {"error": f'Get "{url}": dial tcp {address}: connect: connection refused'})
        except httpx.TransportError as e:
            return Response(503, {"error": f'Get "{url}": {e}'})
        except ValueError as e:  # unmarshal's json error
            return Response(503, {"error": f"invalid character in Jaeger response: {e}"})
        traces = [{**t, "matched": matched(t, cluster)} for t in body.get("data") or []]
        return Response(200, {"data": traces if body.get("data") is not None else None, "errors": body.get("errors"),
                              "tracingServiceName": f"{service}.{ns}"})


def matched(trace: dict[str, Any], cluster: str) -> int:
    """The trace's spans carrying the asked-for tag (istio.cluster_id = cluster)."""
    return sum(1 for span in trace.get("spans") or []
               if any(t.get("key") == "istio.cluster_id" and t.get("value") == cluster for t in span.get("tags") or []))
