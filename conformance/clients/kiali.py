"""Kiali 2.x REST API (routing/routes.go): config with clusters, namespaces, workloads per cluster, mesh graph."""

from __future__ import annotations

from typing import Any

from conformance.clients.base import ServiceClient


class KialiClient(ServiceClient):
    """One Kiali; the HTTPService is rooted at Kiali's web root (e.g. .../proxy/kiali)."""

    def status(self) -> dict:
        """GET /api/status: {status: {"Kiali version", "Kiali state"}, externalServices, ...}."""
        return self.http.get_json("/api/status")

    def config(self) -> dict:
        """GET /api/config: the public config, including the clusters map."""
        return self.http.get_json("/api/config")

    def clusters(self) -> dict[str, dict]:
        """Clusters by name: {accessible, apiEndpoint, isKialiHome, kialiInstances, name, secretName}."""
        return self.config().get("clusters") or {}

    def namespaces(self) -> list[dict]:
        """Every accessible cluster's namespaces: [{name, cluster, isControlPlane, labels, ...}]."""
        return self.http.get_json("/api/namespaces")

    def workloads(self, cluster: str, namespaces: list[str] | None = None) -> dict:
        """GET /api/clusters/workloads for one cluster: {cluster, workloads: [...], validations}.

        Kiali v2.29.0 (handlers/workloads.go, workloadParams.extract) computes health and
        Istio resources for every namespace unless `health` and `istioResources` parse as false.
        """
        params = {"clusterName": cluster, "health": "false", "istioResources": "false"}
        if namespaces:
            params["namespaces"] = ",".join(namespaces)
        return self.http.get_json("/api/clusters/workloads", params)

    def mesh_graph(self, **params: Any) -> dict:
        """GET /api/mesh/graph: nodes carry cluster, infraType and healthData."""
        return self.http.get_json("/api/mesh/graph", params or None)

    def tracing_info(self) -> dict:
        """GET /api/tracing (handlers/tracing.go GetTracingInfo): {enabled, integration, internalURL, provider, url}."""
        return self.http.get_json("/api/tracing")

    def service_traces(self, namespace: str, service: str, cluster: str, start_us: int, limit: int = 100) -> dict:
        """GET /api/namespaces/{ns}/services/{svc}/traces (handlers/tracing.go ServiceTraces): {data: [traces],
        errors, tracingServiceName}; 503 with {error} when Kiali cannot ask its tracing backend."""
        params = {"clusterName": cluster, "startMicros": str(start_us), "limit": str(limit)}
        return self.http.get_json(f"/api/namespaces/{namespace}/services/{service}/traces", params)
