"""A stand-in for the stack's exporters (apiserver, kubelet, node-exporter, ...): every path serves a tiny exposition.

The proving ground scrapes it under each required job's scrape pool and job label, so Prometheus'
targets look like the real stack's; `failing` holds paths that answer 500 (a broken exporter).
"""

from __future__ import annotations

from tests.fakes.server import FakeServer, Response

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class FakeExporter(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.failing: set[str] = set()
        self.route("GET", r"/.*", self._metrics)

    def _metrics(self, request) -> Response:
        if request.path in self.failing:
            return Response(500, "internal error\n")
        return Response(200, "# TYPE exporter_build_info gauge\nexporter_build_info 1\n", content_type=PROMETHEUS_TEXT)
