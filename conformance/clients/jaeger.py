"""Jaeger's query HTTP API (the JSON API of cmd/query/app/http_handler.go, routes under /api, at
github.com/jaegertracing/jaeger v1.76.0, the Jaeger v2.13.0 release): services, traces by service, one trace."""

from __future__ import annotations

from conformance.clients.base import ServiceClient


class JaegerClient(ServiceClient):
    """One Jaeger query service; the HTTPService is rooted at its base_path (Istio's addon: /jaeger)."""

    def services(self) -> list[str]:
        """GET /api/services: {data: [service names], total}; a name is a sidecar's `<app>.<namespace>`."""
        return list(self.http.get_json("/api/services").get("data") or [])

    def traces(self, service: str, start_us: int, end_us: int, limit: int = 100) -> list[dict]:
        """GET /api/traces for a service in [start, end] (microseconds): [{traceID, spans, processes}]."""
        params = {"service": service, "start": str(start_us), "end": str(end_us), "limit": str(limit)}
        return list(self.http.get_json("/api/traces", params).get("data") or [])

    def trace(self, trace_id: str) -> dict | None:
        """GET /api/traces/{id}: the trace, or None when Jaeger holds no span of it (404)."""
        r = self.http.request("GET", f"/api/traces/{trace_id}", ok=(404,))
        if r.status_code == 404:
            return None
        data = r.json().get("data") or []
        return data[0] if data else None
