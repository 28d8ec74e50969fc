"""Metrics endpoints of an Envoy sidecar (/stats/prometheus on 15090) and of istiod (/metrics on 15014)."""

from __future__ import annotations

import re
import secrets
import time
from typing import Callable

import httpx

from tests import web
from tests.fakes.server import FakeServer, Response

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def request_series(reporter: str, source: str, destination: str, count: int = 42, *, code: str = "200",
                   source_workload: str = "traffic",
                   destination_service: str = "helloworld.sample.svc.cluster.local") -> str:
    """One istio_requests_total sample with the labels Istio's stats plugin sets (the sample app's by default)."""
    return (f'istio_requests_total{{reporter="{reporter}",source_cluster="{source}",destination_cluster="{destination}",'
            f'source_workload="{source_workload}",destination_workload="helloworld",'
            f'destination_service="{destination_service}",response_code="{code}"}} {count}\n')


class FakeEnvoy(FakeServer):
    """A sidecar's Envoy-only stats; `requests` holds istio_requests_total lines (empty: no traffic yet).

    With `traffic_flowing`, the request lines appear once it has returned True (series are created lazily, on the
    first request through the sidecar; docs/troubleshooting.md#no-request-metrics-before-traffic). Their counts grow
    by one a scrape while traffic flows (always, without `traffic_flowing`), unless `growing` is False: series left
    by earlier traffic.
    """

    def __init__(self, requests: list[str] | None = None, traffic_flowing: Callable[[], bool] | None = None,
                 growing: bool = True) -> None:
        super().__init__()
        self.request_lines = list(requests or [])
        self.traffic_flowing = traffic_flowing
        self.growing = growing
        self.served = 0  # requests since the start, one a scrape while traffic flows
        self._seen_traffic = False
        self.route("GET", "/stats/prometheus", self._stats)

    def _stats(self, _request) -> Response:
        body = "# TYPE envoy_server_uptime gauge\nenvoy_server_uptime 1234\n"
        flowing = self.traffic_flowing is None or self.traffic_flowing()
        self._seen_traffic = self._seen_traffic or flowing
        self.served += 1 if flowing and self.growing else 0
        if self.request_lines and self._seen_traffic:
            body += "# TYPE istio_requests_total counter\n" + "".join(
                re.sub(r" (\d+)\n$", lambda m: f" {int(m.group(1)) + self.served}\n", line) for line in self.request_lines)
        return Response(200, body, content_type=PROMETHEUS_TEXT)


class FakeIstiod(FakeServer):
    """istiod's monitoring port; `metrics` lists the metric names it exports."""

    def __init__(self, metrics: tuple[str, ...] = ("pilot_xds_pushes", "istio_build")) -> None:
        super().__init__()
        self.metrics = metrics
        self.route("GET", "/metrics", self._metrics)
        # version.Info.String() on the monitoring port (istio 1.29.6 pilot/pkg/bootstrap/monitoring.go)
        self.route("GET", "/version", lambda _request: Response(200, "1.29.6-3d6a1b2c4e5f60718293a4b5c6d7e8f9a0b1c2d3-Clean"))

    def _metrics(self, _request) -> Response:
        lines = []
        if "pilot_xds_pushes" in self.metrics:
            lines += ["# TYPE pilot_xds_pushes counter", 'pilot_xds_pushes{type="cds"} 12', 'pilot_xds_pushes{type="eds"} 30']
        if "istio_build" in self.metrics:
            lines += ["# TYPE istio_build gauge", 'istio_build{component="pilot",tag="1.29.6"} 1']
        return Response(200, "\n".join(lines) + "\n", content_type=PROMETHEUS_TEXT)


class TracingSidecar(FakeServer):
    """An Envoy sidecar's tracing, as Istio 1.29.6 configures the zipkin provider (pilot/pkg/networking/core/
    tracing.go): a request that carries x-envoy-force-trace (or a sampled B3 context) gets a span, sent as Zipkin v2
    JSON to `collector` (POST /api/v2/spans), with 128-bit trace ids and the span context not shared (the server
    span is the client span's child). Every span carries buildServiceTags' istio.* tags and Envoy's own (node_id,
    http.url, http.method, http.status_code, upstream_cluster, component, ...).

    With `upstream` set it is the client's sidecar (outbound): it forwards the request there with the B3 context
    (none when `propagate` is False, the fault of a proxy that drops it) and its span is kind CLIENT. Without, it is
    the server's (inbound) and answers as the helloworld sample does. `collector` None sends nowhere.
    """

    def __init__(self, cluster: str, workload: str, namespace: str, app: str, collector: str | None,
                 upstream: str | None = None, upstream_host: str = "helloworld.sample:5000", propagate: bool = True,
                 mesh_id: str = "mesh1", pod_ip: str = "10.244.0.10") -> None:
        super().__init__()
        self.cluster, self.workload, self.namespace, self.app = cluster, workload, namespace, app
        self.collector, self.upstream, self.upstream_host = collector, upstream, upstream_host
        self.propagate, self.mesh_id, self.pod_ip = propagate, mesh_id, pod_ip
        self.sent: list[dict] = []  # spans it sent (or tried to)
        self.send_errors: list[str] = []
        self.route("GET", r"/.*", self._request)

    def _request(self, request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        forced = headers.get("x-envoy-force-trace", "").lower() == "true"
        traced = forced or headers.get("x-b3-sampled") == "1"
        trace_id = headers.get("x-b3-traceid") or secrets.token_hex(16)
        parent = headers.get("x-b3-spanid")
        span_id = secrets.token_hex(8)
        path = request.path + (f"?{request.raw_query}" if request.raw_query else "")
        start = int(time.time() * 1e6)
        if self.upstream:
            forward = {"host": self.upstream_host, "x-request-id": headers.get("x-request-id", secrets.token_hex(16))}
            if forced:
                forward["x-envoy-force-trace"] = "true"
            if traced and self.propagate:
                forward.update({"x-b3-traceid": trace_id, "x-b3-spanid": span_id, "x-b3-sampled": "1"})
                if parent:
                    forward["x-b3-parentspanid"] = parent
            try:
                upstream = web.get(self.upstream.rstrip("/") + path, headers=forward, timeout=10)
                status, body = upstream.status_code, upstream.text
            except httpx.TransportError:
                status, body = 503, "upstream connect error or disconnect/reset before headers"
        else:
            status, body = 200, f"Hello version: v1, instance: {self.workload}-7d9c5d8b5f-abcde\n"
        if traced:
            self._report(trace_id, span_id, parent, path, status, start, headers)
        return Response(status, body, content_type="text/html; charset=utf-8")

    def _report(self, trace_id: str, span_id: str, parent: str | None, path: str, status: int, start: int,
                headers: dict[str, str]) -> None:
        host = self.upstream_host
        direction = "outbound" if self.upstream else "inbound"
        span = {
            "traceId": trace_id, "id": span_id, "kind": "CLIENT" if self.upstream else "SERVER",
            "name": f"{host.split(':')[0]}.svc.cluster.local:{host.split(':')[1]}/*",
            "timestamp": start, "duration": max(1, int(time.time() * 1e6) - start),
            "localEndpoint": {"serviceName": f"{self.app}.{self.namespace}", "ipv4": self.pod_ip},
            "tags": {
                "component": "proxy", "node_id": f"sidecar~{self.pod_ip}~{self.workload}-7d9c5d8b5f-abcde."
                                                 f"{self.namespace}~{self.namespace}.svc.cluster.local",
                "zone": "", "guid:x-request-id": headers.get("x-request-id", ""),
                "http.url": f"http://{host}{path}", "http.method": "GET", "http.protocol": "HTTP/1.1",
                "downstream_cluster": "-", "user_agent": headers.get("user-agent", ""), "request_size": "0",
                "upstream_cluster": f"{direction}|{host.split(':')[1]}||{host.split(':')[0]}.svc.cluster.local",
                "upstream_cluster.name": f"{direction}|{host.split(':')[1]}||{host.split(':')[0]}.svc.cluster.local",
                "http.status_code": str(status), "response_flags": "-", "response_size": "0",
                "peer.address": self.pod_ip,
                # buildServiceTags
                "istio.canonical_revision": "v1", "istio.canonical_service": self.app, "istio.mesh_id": self.mesh_id,
                "istio.namespace": self.namespace, "istio.cluster_id": self.cluster,
            },
        }
        if parent:
            span["parentId"] = parent
        self.sent.append(span)
        if self.collector is None:
            return
        try:
            web.post(self.collector.rstrip("/") + "/api/v2/spans", json=[span], timeout=5).raise_for_status()
        except httpx.HTTPError as e:  # Envoy counts tracing.zipkin.reports_failed and drops the batch
            self.send_errors.append(f"{type(e).__name__}: {e}")
