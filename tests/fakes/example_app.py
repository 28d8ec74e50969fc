"""A stand-in for brancz/prometheus-example-app (stack/app/example-app.yaml): /metrics as its main.go registers them.

The gauge `version` (1, labelled with the build's version) in client_golang's text format; its vectors
http_requests_total and http_request_duration_seconds have no series before a request, and none is sent.
`failing` makes /metrics answer 500, as a broken app would.
"""

from __future__ import annotations

from conformance.core.versions import load_versions
from tests.fakes.exporter import PROMETHEUS_TEXT
from tests.fakes.server import FakeServer, Response


class FakeExampleApp(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.version = load_versions().apps["example-app"]
        self.route("GET", r"/metrics", self._metrics)

    def _metrics(self, request) -> Response:
        if self.failing:
            return Response(500, "internal error\n")
        text = ("# HELP version Version information about this binary\n# TYPE version gauge\n"
                f'version{{version="{self.version}"}} 1\n')
        return Response(200, text, content_type=PROMETHEUS_TEXT)
