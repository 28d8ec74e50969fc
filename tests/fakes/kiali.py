"""FakeKiali: what kiali/kiali v2.29.0 answers under web_root /kiali with the anonymous strategy.

Configured from a spec of clusters -> namespaces -> workloads:

    {"oke": {"home": True, "namespaces": {"istio-system": {"controlPlane": True, "workloads": [{"name": "istiod"}]}}},
     "workstation": {"apiEndpoint": "https://172.18.0.3:6443", "namespaces": {...}}}

Held to tests/test_kiali_contract.py, a table derived from the v2.29.0 handlers (each row cites its file and
function). Facts the fault switches model (kiali/kiali v2.29.0):
- istio/discovery.go Clusters: a cluster is listed with accessible:true for each loaded remote secret (and the
  home); accessible:false only for a `clustering.clusters` entry without secret_name (no kubeconfig, so no
  apiEndpoint or secretName). kubernetes/cluster_secret.go skips a secret whose kubeconfig has not exactly one
  cluster: the cluster is then not listed at all.
- cmd/server.go run: Kiali waits for every cluster's cache to sync before it serves, so an unreachable remote at
  start means no answer at all (not modelled here: the service proxy answers 503).
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
import time
from typing import Any

import httpx

from tests.fakes.server import FakeServer, Request, Response

# config/config.go AddHealthDefault, appended to the operator's `health_config.rate: []`.
DEFAULT_HEALTH_RATE = [{"tolerance": [
    {"code": "5XX", "degraded": 0, "failure": 10, "protocol": "http", "direction": ".*"},
    {"code": "4XX", "degraded": 10, "failure": 20, "protocol": "http", "direction": ".*"},
    {"code": "^[1-9]$|^1[0-6]$", "degraded": 0, "failure": 10, "protocol": "grpc", "direction": ".*"},
    {"code": "^-$", "degraded": 0, "failure": 10, "protocol": "http|grpc", "direction": ".*"},
]}]
UNDETECTED_HOME = "Kubernetes"  # config.DefaultClusterID


class FakeKiali(FakeServer):
    """Kiali on loopback; clusters spec as in the module docstring."""

    def __init__(self, clusters: dict[str, dict[str, Any]], web_root: str = "/kiali", version: str = "v2.29.0",
                 kiali_namespace: str = "monitoring", prometheus_version: str = "3.14.0",
                 kubernetes_version: str = "v1.35.0", grafana_version: str = "13.2.0") -> None:
        super().__init__()
        self.clusters = clusters
        self.web_root = web_root.rstrip("/")
        self.version = version
        self.kiali_namespace = kiali_namespace  # where the bring-up's Kiali CR (and so its Service) lives
        self.prometheus_version = prometheus_version
        self.kubernetes_version = kubernetes_version
        self.grafana_version = grafana_version
        # Fault switches -------------------------------------------------------
        self.inaccessible: set[str] = set()  # in clustering.clusters without secret_name: listed, accessible:false
        self.hidden: set[str] = set()  # no (usable) remote secret: not listed at all (docs/troubleshooting.md#kiali-cannot-reach-the-remote-cluster)
        self.home_name: str | None = None  # kubernetes_config.cluster_name unset or wrong: the home's name in Kiali
        self.tracing_url: str | None = None  # external_services.tracing.internal_url; None: tracing.enabled false
        api = self.web_root + "/api"
        self.route("GET", api + "/config", self._config)
        self.route("GET", api + "/namespaces", self._namespaces)
        self.route("GET", api + "/clusters/workloads", self._workloads)
        self.route("GET", api + "/mesh/graph", self._mesh_graph)
        self.route("GET", api + "/status", self._status)
        self.route("GET", api + "/tracing", self._tracing_info)
        self.route("GET", api + r"/namespaces/(?P<namespace>[^/]+)/services/(?P<service>[^/]+)/traces", self._service_traces)

    # -- model ---------------------------------------------------------------------
    def _spec_home(self) -> str:
        return next((name for name, c in self.clusters.items() if c.get("home")), next(iter(self.clusters)))

    def _names(self) -> dict[str, str]:
        """Kiali's name for each cluster of the spec that Kiali lists (spec name -> Kiali name)."""
        home = self._spec_home()
        return {name: (self.home_name or name) if name == home else name
                for name in self.clusters if name not in self.hidden}

    def _by_kiali_name(self, kiali_name: str) -> str | None:
        return next((spec for spec, name in self._names().items() if name == kiali_name), None)

    def _has_client(self, spec_name: str) -> bool:
        """A service-account client exists: the home, or a remote whose secret loaded."""
        return spec_name in self._names() and (spec_name == self._spec_home() or spec_name not in self.inaccessible)

    def _kube_cluster(self, spec_name: str) -> dict[str, Any]:
        """models/mesh.go KubeCluster, as istio/discovery.go Clusters fills it."""
        spec = self.clusters[spec_name]
        name = self._names()[spec_name]
        if not self._has_client(spec_name):
            return {"accessible": False, "apiEndpoint": "", "isKialiHome": False, "kialiInstances": None,
                    "name": name, "secretName": ""}
        home = spec_name == self._spec_home()
        instances = None  # discoverKiali: no Service labelled app.kubernetes.io/part-of=kiali -> nil
        if home:
            instances = [{"namespace": self.kiali_namespace, "operatorResource": "", "serviceName": "kiali",
                          "url": "", "version": self.version}]
        return {"accessible": True,
                "apiEndpoint": spec.get("apiEndpoint", "https://10.96.0.1:443" if home else f"https://{spec_name}:6443"),
                "isKialiHome": home, "kialiInstances": instances, "name": name,
                "secretName": "" if home else spec.get("secretName", f"kiali-remote-cluster-secret-{spec_name}")}

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
        """models/workload.go WorkloadListItem of a Deployment, health and Istio resources not asked for."""
        labels = dict(spec.get("labels", {"app": spec["name"], "version": "v1"}))
        pods = int(spec.get("podCount", 1))
        item: dict[str, Any] = {
            "name": spec["name"], "namespace": namespace, "cluster": cluster,
            "gvk": {"Group": "apps", "Version": "v1", "Kind": "Deployment"},
            "createdAt": "2024-01-01T00:00:00Z", "resourceVersion": "1",
            "istioSidecar": bool(spec.get("istioSidecar", True)), "isAmbient": False,
            "isGateway": bool(spec.get("isGateway", False)), "isWaypoint": False, "isZtunnel": False,
            "additionalDetailSample": None, "labels": labels, "appLabel": "app" in labels,
            "versionLabel": "version" in labels, "podCount": pods,
            "annotations": dict(spec.get("annotations", {"deployment.kubernetes.io/revision": "1"})),
            "healthAnnotations": {}, "istioReferences": [], "dashboardAnnotations": {},
            "serviceAccountNames": [spec.get("serviceAccount", "default")] if pods else [],
            "health": {"requests": {"healthAnnotations": {}, "inbound": {}, "outbound": {}}, "workloadStatus": None},
            "waypointWorkloads": None, "ValidationKey": "", "ValidationVersion": "",
        }
        if labels:
            item["templateLabels"] = labels
        if spec.get("templateAnnotations"):
            item["templateAnnotations"] = dict(spec["templateAnnotations"])
        return item

    # -- handlers ------------------------------------------------------------------------
    def _config(self, request: Request) -> Response:
        """handlers/config.go Config: PublicConfig with its omitempty fields left out when zero."""
        names = self._names()
        clusters = {names[spec]: self._kube_cluster(spec) for spec in sorted(names, key=names.get)}
        control_planes = {names[spec]: ns for spec in names if self._has_client(spec)
                          for ns, nspec in self.clusters[spec].get("namespaces", {}).items() if nspec.get("controlPlane")}
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
            "kialiFeatureFlags": {"authz": {}, "clustering": {}, "istioAnnotationAction": True,
                                  "istioInjectionAction": True, "istioUpgradeAction": False,
                                  "uiDefaults": {}, "validations": {}},
            "logLevel": "info",
            "prometheus": {"enabled": True, "globalScrapeInterval": 30, "storageTsdbRetention": 864000},
            "runMode": "app",
        }
        if control_planes:
            body["controlPlanes"] = control_planes
        return Response(200, body)

    def _namespaces(self, request: Request) -> Response:
        """handlers/namespaces.go NamespaceList: every cluster with a client; a remote's error is skipped."""
        names = self._names()
        out = [self._namespace(names[spec], name, nspec)
               for spec in names if self._has_client(spec)
               for name, nspec in self.clusters[spec].get("namespaces", {}).items()]
        return Response(200, out)

    def _workloads(self, request: Request) -> Response:
        """handlers/workloads.go ClusterWorkloads: clusterName defaults to the home; unknown -> 200, none."""
        cluster = request.arg("clusterName") or self._names()[self._spec_home()]
        wanted = [n for n in (request.arg("namespaces") or "").split(",") if n]
        spec = self._by_kiali_name(cluster)
        workloads = []
        if spec is not None and self._has_client(spec):
            for ns, nspec in self.clusters[spec].get("namespaces", {}).items():
                if wanted and ns not in wanted:
                    continue
                workloads += [self._workload(cluster, ns, w) for w in nspec.get("workloads", [])]
        return Response(200, {"cluster": cluster, "workloads": workloads, "validations": {}})

    def _mesh_graph(self, request: Request) -> Response:
        """Not held to v2.29.0 (no suite calls it): boxes per cluster and istiod infra nodes."""
        names = self._names()
        nodes: list[dict[str, Any]] = []
        edges: list[dict[str, Any]] = []
        for spec in names:
            cluster = names[spec]
            box = f"n{len(nodes)}"
            accessible = self._has_client(spec)
            nodes.append({"data": {"id": box, "cluster": cluster, "infraName": cluster, "infraType": "cluster",
                                   "namespace": "", "nodeType": "box", "healthData": None, "isBox": "cluster",
                                   **({} if accessible else {"isInaccessible": True})}})
            if not accessible:
                continue
            for ns, nspec in self.clusters[spec].get("namespaces", {}).items():
                if nspec.get("controlPlane"):
                    nid = f"n{len(nodes)}"
                    nodes.append({"data": {"id": nid, "parent": box, "cluster": cluster, "infraName": "istiod",
                                           "infraType": "istiod", "namespace": ns, "nodeType": "infra",
                                           "healthData": "Healthy", "version": nspec.get("istioVersion", "1.24.0")}})
        for node in list(nodes):
            data = node["data"]
            if data["infraType"] == "istiod":
                for other in nodes:
                    od = other["data"]
                    if od["nodeType"] == "box" and od["cluster"] != data["cluster"] and not od.get("isInaccessible"):
                        edges.append({"data": {"id": f"e{len(edges)}", "source": data["id"], "target": od["id"]}})
        return Response(200, {"elements": {"nodes": nodes, "edges": edges}, "meshNames": [""],
                              "timestamp": int(time.time())})

    def _status(self, request: Request) -> Response:
        """handlers/root.go Root -> status/status.go Get; externalServices from status/versions.go."""
        names = self._names()
        services = [{"name": f"Kubernetes-{names[spec]}", "version": self.kubernetes_version, "tempoConfig": {}}
                    for spec in names if self._has_client(spec)]
        services.append({"name": "Prometheus", "version": self.prometheus_version, "tempoConfig": {}})
        services.append({"name": "Grafana", "version": self.grafana_version, "tempoConfig": {}})  # the CR enables it
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
        # config/config.go NewConfig defaults: provider jaeger, namespace_selector true, tempo cache 200 on.
        return Response(200, {"enabled": True, "integration": True, "internalURL": self.tracing_url, "provider": "jaeger",
                              "tempoConfig": {"cacheCapacity": 200, "cacheEnabled": True}, "url": "",
                              "namespaceSelector": True, "useWaypointName": False,
                              "whiteListIstioSystem": ["jaeger-query", "istio-ingressgateway"]})

    def _service_traces(self, request: Request) -> Response:
        """ServiceTraces -> TracingService.GetServiceTraces -> JaegerHTTPClient.GetAppTracesHTTP (no waypoint: the
        lookup is the service's app label, here the service's own name as in the stack's sample)."""
        if self.tracing_url is None:
            return Response(503, {"error": "tracing is not enabled"})  # business/tracing.go client()
        ns, service = request.params["namespace"], request.params["service"]
        cluster = request.arg("clusterName") or self._names()[self._spec_home()]
        start_us = int(request.arg("startMicros") or 0)  # readQuery: zero time when absent
        end_us = int(request.arg("endMicros") or time.time() * 1e6)
        # prepareQuery: start/end in whole seconds (Unix() * 1e6), tags JSON-encoded, limit (default 100).
        params = {"service": f"{service}.{ns}", "start": str(start_us // 1_000_000 * 1_000_000),
                  "end": str(end_us // 1_000_000 * 1_000_000),
                  "tags": json.dumps({"istio.cluster_id": cluster}, separators=(",", ":")),
                  "limit": request.arg("limit") or "100"}
        url = self.tracing_url.rstrip("/") + "/api/traces"
        try:
            r = httpx.get(url, params=params, headers={"Accept": "application/json"}, timeout=5)
            body = r.json()
        except httpx.TransportError as e:  # net/http's client.Do error
            return Response(503, {"error": f'Get "{url}": dial tcp: {type(e).__name__}: {e}'})
        except ValueError as e:  # unmarshal's json error
            return Response(503, {"error": f"invalid character in Jaeger response: {e}"})
        return Response(200, {"data": body.get("data"), "errors": body.get("errors"),
                              "tracingServiceName": f"{service}.{ns}"})
