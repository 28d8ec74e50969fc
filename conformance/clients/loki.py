"""Loki HTTP API (docs/sources/reference/loki-http-api.md): ready, JSON push, queries, labels, series, tail."""

from __future__ import annotations

import json
import ssl
import struct
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import websocket

from conformance.core.http import NO_RETRY, USER_AGENT
from conformance.core.redact import redact
from conformance.clients.base import ServiceClient

TAIL_PATH = "/loki/api/v1/tail"
# Loki 3.x (pkg/util/httpreq LokiEncodingFlagsHeader): answer a log query with each stream under its own labels and
# the entry's structured metadata (detected_level, ...) apart, as [ts, line, {structuredMetadata, parsed}]. Without
# it one pushed stream comes back as one stream per detected_level. Loki 2.x ignores the header.
CATEGORIZE_LABELS = {"X-Loki-Response-Encoding-Flags": "categorize-labels"}


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


class TailRefused(Exception):
    """The tail websocket could not be opened (a proxy that does not upgrade, Loki unreachable, a 4xx)."""


class TailClosed(Exception):
    """Loki closed the tail (its close frame's reason, e.g. "reached tail max duration limit")."""


@dataclass
class TailMessage:
    """One tail response and when it arrived (time.time())."""

    streams: list[dict]  # [{stream: labels, values: [[ns, line], ...]}]
    dropped_entries: list[dict]  # [{timestamp: ns, labels: {...}}]: entries Loki could not send in time
    received_at: float


class Tail:
    """An open /loki/api/v1/tail websocket (grafana/loki v2.9.3 pkg/querier/http.go TailHandler)."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws

    def next(self, timeout: float) -> TailMessage | None:
        """The next message, or None when none arrived within timeout; TailClosed when Loki ended the tail."""
        deadline = time.monotonic() + timeout
        while True:
            self.ws.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                opcode, data = self.ws.recv_data(control_frame=True)  # a ping is answered by the library
            except websocket.WebSocketTimeoutException:
                return None
            except (websocket.WebSocketException, OSError) as e:
                raise TailClosed(f"{type(e).__name__}: {e}") from None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                raise TailClosed(f"closed by Loki ({code}): {data[2:].decode(errors='replace')}")
            if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                doc = json.loads(data)
                return TailMessage(doc.get("streams") or [], doc.get("dropped_entries") or [], time.time())
            if time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except (websocket.WebSocketException, OSError):
            pass

    def __enter__(self) -> "Tail":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LokiClient(ServiceClient):
    """One Loki (single binary or gateway)."""

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
        """The data object: resultType streams (or matrix for metric queries) and result; on Loki 3.x a stream is
        one pushed stream (its labels, service_name included) and each entry carries its metadata third."""
        params = {"query": query, "limit": str(limit), "direction": direction}
        if start is not None:
            params["start"] = _ns(start)
        if end is not None:
            params["end"] = _ns(end)
        return self.http.get_json("/loki/api/v1/query_range", params, headers=CATEGORIZE_LABELS)["data"]

    def streams(self, query: str, start: float | None = None, end: float | None = None, limit: int = 100) -> list[dict]:
        """Log streams [{stream: labels, values: [[ns, line], ...]}] for a log query: one per stream Loki stores,
        on 2.x and 3.x alike (3.x's structured metadata, e.g. detected_level, left out of labels and entries)."""
        return [{"stream": s.get("stream") or {}, "values": [list(v[:2]) for v in s.get("values") or []]}
                for s in self.query_range(query, start, end, limit)["result"]]

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

    def tail(self, query: str, start: float | int | None = None, delay_for: int = 0, limit: int = 100,
             timeout: float = 10.0) -> Tail:
        """Open GET /loki/api/v1/tail as a websocket; TailRefused when the upgrade does not happen.

        Loki first sends what matches from `start` on, then each new entry as its ingester takes it
        (pkg/querier/tail.go); `delay_for` (at most 5 s) holds entries back for late arrivals.
        """
        params = {"query": query, "limit": str(limit), "delay_for": str(delay_for)}
        if start is not None:
            params["start"] = _ns(start)
        url = self.http.url(TAIL_PATH) + "?" + urlencode(params)
        try:
            ws = websocket.create_connection(url.replace("http", "ws", 1), timeout=timeout,
                                             header=self._ws_headers(url), sslopt=self._sslopt())
        except websocket.WebSocketBadStatusException as e:
            body = (e.resp_body or b"").decode(errors="replace").strip().splitlines()
            raise TailRefused(f"{e.status_code}: {body[0] if body else '(empty body)'}") from None
        except (websocket.WebSocketException, OSError) as e:
            raise TailRefused(redact(f"{type(e).__name__}: {e}")) from None
        return Tail(ws)

    def _ws_headers(self, url: str) -> list[str]:
        """The service's headers and credentials (a kube token, basic auth) for the upgrade request."""
        request = httpx.Request("GET", url, headers={"User-Agent": USER_AGENT, **self.http.headers})
        auth = self.http.auth
        if isinstance(auth, tuple):
            auth = httpx.BasicAuth(*auth)
        if auth is not None:
            request = next(auth.sync_auth_flow(request))
        return [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]

    def _sslopt(self) -> dict[str, Any]:
        verify = self.http.verify
        if isinstance(verify, ssl.SSLContext):
            return {"context": verify}
        if verify is False:
            return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        return {}

    def _list(self, path: str, start: Any, end: Any, query: str | None = None) -> list[str]:
        params = {}
        if start is not None:
            params["start"] = _ns(start)
        if end is not None:
            params["end"] = _ns(end)
        if query:
            params["query"] = query
        return self.http.get_json(path, params).get("data") or []
