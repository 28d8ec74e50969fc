"""FakeDashboards: OpenSearch Dashboards 3.6.0's /api/status and its index-pattern saved objects, nothing more.

opensearch-project/OpenSearch-Dashboards src/core/server/status/routes/status.ts: GET /api/status answers
{name, uuid, version: {number, ...}, status, metrics}; without ?v8format the status is legacy_status.ts
calculateLegacyStatus: {overall: {state: green|yellow|red, title, nickname, uiColor, since}, statuses: [...]}.
src/core/server/saved_objects/routes/find.ts: GET /api/saved_objects/_find?type=index-pattern answers
{page, per_page, total, saved_objects: [{id, type, attributes: {title, timeFieldName}, ...}]}.
"""

from __future__ import annotations

from tests.fakes.server import FakeServer, Response

VERSION = "3.6.0"
TITLES = {"green": "Green", "yellow": "Yellow", "red": "Red"}


class FakeDashboards(FakeServer):
    """state: the overall legacy state; patterns: the index-pattern titles saved."""

    def __init__(self, patterns: tuple[str, ...] = ("logs-*",), state: str = "green") -> None:
        super().__init__()
        self.patterns = list(patterns)
        self.state = state
        self.route("GET", r"/api/status", self._status)
        self.route("GET", r"/api/saved_objects/_find", self._find)

    def _status(self, request) -> Response:
        overall = {"state": self.state, "title": TITLES[self.state], "since": "2026-12-05T00:00:00.000Z"}
        return Response(200, {"name": "opensearch-dashboards", "uuid": "00000000-0000-0000-0000-000000000000",
                              "version": {"number": VERSION, "build_snapshot": False},
                              "status": {"overall": overall, "statuses": []}, "metrics": {}})

    def _find(self, request) -> Response:
        kinds = request.query.get("type") or []
        found = [{"id": f"ip-{i}", "type": "index-pattern", "attributes": {"title": t, "timeFieldName": "@timestamp"}}
                 for i, t in enumerate(self.patterns)] if "index-pattern" in kinds else []
        return Response(200, {"page": 1, "per_page": 20, "total": len(found), "saved_objects": found})
