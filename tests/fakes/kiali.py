"""FakeKiali: Kiali 2.x (shapes of kiali/kiali v2.29.0) under web_root /kiali, anonymous strategy.

Configured from a spec of clusters -> namespaces -> workloads:

    {"oke": {"home": True, "namespaces": {"istio-system": {"controlPlane": True, "workloads": [{"name": "istiod"}]}}},
     "workstation": {"secretName": "kiali-remote-cluster-secret-workstation", "namespaces": {...}}}

Facts from kiali v2.29.0: handlers/config.go PublicConfig, models.KubeCluster, models.Namespace,
handlers/workloads.go ClusterWorkloads (an unknown or inaccessible cluster is NOT an error there: Kiali
ignores the namespace lookup failure and answers 200 with no workloads), handlers/base.go error bodies
({"error": ...}), status/status.go, mesh/config/common NodeData.
"""

from __future__ import annotations

import time
from typing import Any

from tests.fakes.server import FakeServer, Request, Response


class FakeKiali(FakeServer):
    """Kiali on loopback; clusters spec as in the module docstring."""

    def __init__(self, clusters: dict[str, dict[str, Any]], web_root: str = "/kiali", version: str = "v2.29.0",
                 kiali_namespace: str = "istio-system") -> None:
        super().__init__()
        self.clusters = clusters
        self.web_root = web_root.rstrip("/")
        self.version = version
        self.kiali_namespace = kiali_namespace
        # Fault switches -------------------------------------------------------
        self.inaccessible: set[str] = set()  # listed but accessible:false, no namespaces/workloads (failure-modes #25)
        self.hidden: set[str] = set()  # missing entirely from /api/config (no remote secret at all, failure-modes #25)
        self.home_override: str | None = None  # isKialiHome on this cluster instead (wrong home flag)
        api = self.web_root + "/api"
        self.route("GET", api + "/config", self._config)
        self.route("GET", api + "/namespaces", self._namespaces)
        self.route("GET", api + "/clusters/workloads", self._workloads)
        self.route("GET", api + "/mesh/graph", self._mesh_graph)
        self.route("GET", api + "/status", self._status)

    # -- model ---------------------------------------------------------------------
    def _home(self) -> str:
        if self.home_override:
            return self.home_override
        return next((name for name, c in self.clusters.items() if c.get("home")), next(iter(self.clusters)))

    def _listed(self) -> list[str]:
        return [name for name in self.clusters if name not in self.hidden]

    def _accessible(self, name: str) -> bool:
        return name in self.clusters and name not in self.hidden and name not in self.inaccessible

    def _kube_cluster(self, name: str) -> dict[str, Any]:
        spec = self.clusters[name]
        home = name == self._home()
        instances = []
        if home:
            instances = [{"namespace": self.kiali_namespace, "operatorResource": "", "serviceName": "kiali",
                          "url": "", "version": self.version}]
        return {"accessible": self._accessible(name),
                "apiEndpoint": spec.get("apiEndpoint", "https://10.96.0.1:443" if home else f"https://{name}:6443"),
                "isKialiHome": home, "kialiInstances": instances, "name": name,
                "secretName": "" if home else spec.get("secretName", f"kiali-remote-cluster-secret-{name}")}

    def _namespace(self, cluster: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        labels = dict(spec.get("labels", {}))
        ns: dict[str, Any] = {"name": name, "cluster": cluster, "isAmbient": bool(spec.get("ambient", False)),
                              "isControlPlane": bool(spec.get("controlPlane", False)), "labels": labels,
                              "annotations": dict(spec.get("annotations", {}))}
        if labels.get("istio-injection") == "enabled":
            ns["revision"] = "default"
        elif "istio.io/rev" in labels:
            ns["revision"] = labels["istio.io/rev"]
        return ns

    def _workload(self, cluster: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
        labels = dict(spec.get("labels", {"app": spec["name"], "version": "v1"}))
        return {
            "name": spec["name"], "namespace": namespace, "cluster": cluster,
            "gvk": {"Group": "apps", "Version": "v1", "Kind": spec.get("kind", "Deployment")},
            "createdAt": "2024-01-01T00:00:00Z", "resourceVersion": "1",
            "istioSidecar": bool(spec.get("istioSidecar", True)), "isAmbient": False,
            "isGateway": bool(spec.get("isGateway", False)), "isWaypoint": False, "isZtunnel": False,
            "additionalDetailSample": None, "labels": labels, "appLabel": "app" in labels,
            "versionLabel": "version" in labels, "podCount": int(spec.get("podCount", 1)), "annotations": {},
            "healthAnnotations": {}, "istioReferences": [], "dashboardAnnotations": {},
            "serviceAccountNames": [spec.get("serviceAccount", "default")], "health": {},
            "waypointWorkloads": [],
        }

    # -- handlers ------------------------------------------------------------------------
    def _config(self, request: Request) -> Response:
        clusters = {name: self._kube_cluster(name) for name in self._listed()}
        control_planes = {}
        for name in self._listed():
            if not self._accessible(name):
                continue
            for ns, spec in self.clusters[name].get("namespaces", {}).items():
                if spec.get("controlPlane"):
                    control_planes[name] = ns
        body = {
            "authStrategy": "anonymous",
            "chatAI": {"enabled": False, "defaultProvider": "", "providers": [], "store": {"enabled": False}},
            "clusters": clusters,
            "clusterWideAccess": True,
            "controlPlanes": control_planes,
            "deployment": {},
            "healthConfig": {"rate": []},
            "istioAnnotations": {"ambientAnnotation": "ambient.istio.io/redirection",
                                 "ambientAnnotationEnabled": "enabled",
                                 "istioInjectionAnnotation": "sidecar.istio.io/inject"},
            "istioAPIInstalled": True,
            "istioIdentityDomain": "svc.cluster.local",
            "istioLabels": {"appLabelName": "", "egressGatewayLabel": "istio=egressgateway",
                            "ingressGatewayLabel": "istio=ingressgateway",
                            "injectionLabelName": "istio-injection", "injectionLabelRev": "istio.io/rev",
                            "versionLabelName": ""},
            "istioStatusEnabled": True,
            "kialiFeatureFlags": {},
            "logLevel": "info",
            "prometheus": {"enabled": True, "globalScrapeInterval": 30, "storageTsdbRetention": 864000},
            "runMode": "app",
        }
        return Response(200, body)

    def _namespaces(self, request: Request) -> Response:
        out = [self._namespace(cluster, name, spec)
               for cluster in self._listed() if self._accessible(cluster)
               for name, spec in self.clusters[cluster].get("namespaces", {}).items()]
        return Response(200, out)

    def _workloads(self, request: Request) -> Response:
        cluster = request.arg("clusterName") or self._home()
        wanted = [n for n in (request.arg("namespaces") or "").split(",") if n]
        workloads = []
        if self._accessible(cluster):  # otherwise the namespace lookup fails and Kiali returns no workloads
            for ns, spec in self.clusters[cluster].get("namespaces", {}).items():
                if wanted and ns not in wanted:
                    continue
                workloads += [self._workload(cluster, ns, w) for w in spec.get("workloads", [])]
        return Response(200, {"cluster": cluster, "workloads": workloads, "validations": {}})

    def _mesh_graph(self, request: Request) -> Response:
        nodes: list[dict[str, Any]] = []
        edges: list[dict[str, Any]] = []
        for cluster in self._listed():
            box = f"n{len(nodes)}"
            accessible = self._accessible(cluster)
            nodes.append({"data": {"id": box, "cluster": cluster, "infraName": cluster, "infraType": "cluster",
                                   "namespace": "", "nodeType": "box", "healthData": None, "isBox": "cluster",
                                   **({} if accessible else {"isInaccessible": True})}})
            if not accessible:
                continue
            for ns, spec in self.clusters[cluster].get("namespaces", {}).items():
                if spec.get("controlPlane"):
                    nid = f"n{len(nodes)}"
                    nodes.append({"data": {"id": nid, "parent": box, "cluster": cluster, "infraName": "istiod",
                                           "infraType": "istiod", "namespace": ns, "nodeType": "infra",
                                           "healthData": "Healthy", "version": spec.get("istioVersion", "1.24.0")}})
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
        return Response(200, {
            "status": {"Kiali commit hash": "fake", "Kiali container version": self.version,
                       "Kiali state": "running", "Kiali version": self.version},
            "externalServices": [{"name": "Prometheus", "version": "3.8.0"},
                                 {"name": "Kubernetes", "version": "v1.33.1"}],
            "warningMessages": [],
            "istioEnvironment": {"istioAPIEnabled": True},
        })
