"""Loki HTTP API (docs/sources/reference/loki-http-api.md): ready, JSON push, queries, labels, series."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.http import HTTPService, NO_RETRY


@dataclass
class Stream:
    """A set of labels and its entries as (nanosecond timestamp, line)."""

    labels: dict[str, str]
    entries: list[tuple[int, str]] = field(default_factory=list)

    def to_json(self) -> dict:
        # Loki wants the timestamp as a string of nanoseconds (an int is rejected).
        return {"stream": self.labels, "values": [[str(ts), line] for ts, line in self.entries]}


def _ns(t: float | int | None) -> str | None:
    """Seconds (float) to Loki's nanosecond string; ints are taken as nanoseconds already."""
    if t is None:
        return None
    return str(t) if isinstance(t, int) else str(int(t * 1e9))


class LokiClient:
    """One Loki (single binary or gateway)."""

    def __init__(self, http: HTTPService) -> None:
        self.http = http

    @property
    def name(self) -> str:
        return self.http.name

    def ready(self) -> tuple[bool, str]:
        """GET /ready once: (ready, body); 503 while the ingester warms up."""
        r = self.http.request("GET", "/ready", ok=(503,), retry=NO_RETRY)
        return r.status_code == 200, r.text.strip()

    def push(self, streams: list[Stream]) -> None:
        """POST /loki/api/v1/push as JSON; Loki answers 204."""
        self.http.request("POST", "/loki/api/v1/push", json={"streams": [s.to_json() for s in streams]})

    def query_range(
        self,
        query: str,
        start: float | int | None = None,
        end: float | int | None = None,
        limit: int = 100,
        direction: str = "backward",
    ) -> dict:
        """The data object: resultType streams (or matrix for metric queries) and result."""
        params = {"query": query, "limit": str(limit), "direction": direction}
        if start is not None:
            params["start"] = _ns(start)
        if end is not None:
            params["end"] = _ns(end)
        return self.http.get_json("/loki/api/v1/query_range", params)["data"]

    def streams(self, query: str, start: float | None = None, end: float | None = None, limit: int = 100) -> list[dict]:
        """Log streams [{stream: labels, values: [[ns, line], ...]}] for a log query."""
        return self.query_range(query, start, end, limit)["result"]

    def labels(self, start: float | None = None, end: float | None = None) -> list[str]:
        return self._list("/loki/api/v1/labels", start, end)

    def label_values(self, name: str, start: float | None = None, end: float | None = None, query: str | None = None) -> list[str]:
        """Values of one label seen in [start, end) (Loki's default window is the last 6 h)."""
        return self._list(f"/loki/api/v1/label/{name}/values", start, end, query)

    def series(self, match: list[str], start: float | None = None, end: float | None = None) -> list[dict]:
        params: list[tuple[str, str]] = [("match[]", m) for m in match]
        if start is not None:
            params.append(("start", _ns(start)))
        if end is not None:
            params.append(("end", _ns(end)))
        return self.http.get_json("/loki/api/v1/series", params)["data"]

    def metrics(self) -> str:
        """Loki's own Prometheus metrics as exposition text."""
        return self.http.request("GET", "/metrics").text

    def _list(self, path: str, start: Any, end: Any, query: str | None = None) -> list[str]:
        params = {}
        if start is not None:
            params["start"] = _ns(start)
        if end is not None:
            params["end"] = _ns(end)
        if query:
            params["query"] = query
        return self.http.get_json(path, params).get("data") or []
