"""Metrics endpoints of an Envoy sidecar (/stats/prometheus on 15090) and of istiod (/metrics on 15014)."""

from __future__ import annotations

from typing import Callable

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

    With `traffic_flowing`, the request lines appear only while it returns True (series are created
    lazily, on the first request through the sidecar; failure-modes 18).
    """

    def __init__(self, requests: list[str] | None = None, traffic_flowing: Callable[[], bool] | None = None) -> None:
        super().__init__()
        self.request_lines = list(requests or [])
        self.traffic_flowing = traffic_flowing
        self._seen_traffic = False
        self.route("GET", "/stats/prometheus", self._stats)

    def _stats(self, _request) -> Response:
        body = "# TYPE envoy_server_uptime gauge\nenvoy_server_uptime 1234\n"
        if self.traffic_flowing is not None:
            self._seen_traffic = self._seen_traffic or self.traffic_flowing()
        if self.request_lines and (self.traffic_flowing is None or self._seen_traffic):
            body += "# TYPE istio_requests_total counter\n" + "".join(self.request_lines)
        return Response(200, body, content_type=PROMETHEUS_TEXT)


class FakeIstiod(FakeServer):
    """istiod's monitoring port; `metrics` lists the metric names it exports."""

    def __init__(self, metrics: tuple[str, ...] = ("pilot_xds_pushes", "istio_build")) -> None:
        super().__init__()
        self.metrics = metrics
        self.route("GET", "/metrics", self._metrics)

    def _metrics(self, _request) -> Response:
        lines = []
        if "pilot_xds_pushes" in self.metrics:
            lines += ["# TYPE pilot_xds_pushes counter", 'pilot_xds_pushes{type="cds"} 12', 'pilot_xds_pushes{type="eds"} 30']
        if "istio_build" in self.metrics:
            lines += ["# TYPE istio_build gauge", 'istio_build{component="pilot",tag="1.29.6"} 1']
        return Response(200, "\n".join(lines) + "\n", content_type=PROMETHEUS_TEXT)
