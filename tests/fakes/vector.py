"""FakeVector: Vector 0.56.0 tailing a file into an `elasticsearch` sink, with its internal metrics on a
`prometheus_exporter` sink, as the vector-opensearch profile's agent (issue 20).

Held to vectordotdev/vector v0.56.0 (docs/real-stack.md "Vector's elasticsearch sink"):
- src/sinks/elasticsearch/common.rs: POST <endpoint>/_bulk?timeout=60s (the request timeout, TowerRequestConfigDefaults
  TIMEOUT_SECS 60); with api_version auto the major version is read from GET / `version.number` (get_version) and
  the action line carries `_type` (doc_type "_doc", config.rs default_doc_type) below 7: OpenSearch 3.6.0 reads as 3;
- src/sinks/elasticsearch/service.rs: Content-Type application/x-ndjson; get_event_status: 2xx without
  `"errors":true` is Delivered, 2xx with it or a 4xx Rejected, a 5xx Errored;
- src/sinks/elasticsearch/encoder.rs write_bulk_action: `{"index":{"_index":...}}` then the document, each line
  ended by "\n"; the index template is the profile's `logs-%Y-%m-%d` (config.rs default is vector-%Y.%m.%d);
- src/sinks/util/batch.rs RealtimeSizeBasedDefaultBatchSettings: a batch is flushed after 1 s (or 10 MB);
- src/sinks/elasticsearch/retry.rs ElasticsearchRetryLogic: 429 and 5xx retried, 501 and other 4xx not,
  `"errors":true` not retried (request_retry_partial false), a connection error always retried
  (is_retriable_error true); src/sinks/util/retries.rs FibonacciRetryPolicy with service.rs defaults:
  retry_attempts isize::MAX (never exhausted), the first wait retry_initial_backoff_secs 1 s, then Fibonacci
  capped at retry_max_duration_secs 30 s, each with full jitter (0-wait] (JitterMode::Full default);
- lib/vector-stream/src/driver.rs: Delivered adds component_sent_events_total; Rejected emits CallError
  (lib/vector-common/src/internal_event/service.rs): component_errors_total{error_type="request_failed",
  stage="sending"} +1 and component_discarded_events_total{intentional="false"} += the batch;
- src/internal_events/http_client.rs: http_client_requests_sent_total{method}, http_client_responses_total{status}
  for every answer, http_client_errors_total{error_kind} for a request that got none (src/http.rs send);
- lib/vector-common/src/internal_event/metric_name.rs names; src/sources/internal_metrics.rs namespace "vector"
  (so the exporter shows vector_<name>), tags component_id, component_kind, component_type, and host.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from conformance.core.versions import load_versions
from tests.fakes.exposition import family
from tests.fakes.server import FakeServer, Response

VERSION = "0.56.0"
USER_AGENT = f"Vector/{VERSION} (x86_64-unknown-linux-gnu)"  # src/http.rs default_request_headers (build triple)
SINK = ("opensearch", "sink", "elasticsearch")  # (component_id, component_kind, component_type) of the profile's sink
SOURCE = ("pod_logs", "source", "kubernetes_logs")
BATCH_TIMEOUT = 1.0
INITIAL_BACKOFF, MAX_BACKOFF = 1.0, 30.0
REFUSED = "error trying to connect: tcp connect error: Connection refused (os error 111)"  # hyper's Display
TAGS = ("component_id", "component_kind", "component_type", "host")
VERSION = load_versions().apps["vector"].split("-")[0]  # the pin's version part, as Vector reports it (0.56.0)


class VectorMetrics:
    """Counters by (name, label values); exported as the prometheus_exporter sink shows them."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._lock = threading.Lock()
        self.values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}

    def add(self, name: str, component: tuple[str, str, str], value: float = 1.0, **labels: str) -> None:
        key = tuple(sorted({**dict(zip(TAGS, (*component, self.host))), **labels}.items()))
        with self._lock:
            series = self.values.setdefault(name, {})
            series[key] = series.get(key, 0.0) + value

    def set(self, name: str, component: tuple[str, str, str], value: float, **labels: str) -> None:
        key = tuple(sorted({**dict(zip(TAGS, (*component, self.host))), **labels}.items()))
        with self._lock:
            self.values.setdefault(name, {})[key] = value

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            return sum(v for k, v in self.values.get(name, {}).items() if all(dict(k).get(a) == b for a, b in labels.items()))

    def exposition(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, series in sorted(self.values.items()):
                names = tuple(k for k, _ in next(iter(series)))
                kind = "gauge" if name == "buffer_events" else "counter"
                lines += family(f"vector_{name}", name, kind, names, {tuple(v for _, v in k): n for k, n in series.items()},
                                lambda x: f"{x:g}")
        # v0.56.0 src/internal_events/heartbeat.rs: every second the gauge build_info{debug, version, rust_version,
        # arch, revision} = 1 (internal_metrics adds its host tag and the vector_ namespace).
        lines += ["# TYPE vector_build_info gauge",
                  f'vector_build_info{{arch="x86_64",debug="false",host="{self.host}",revision="",'
                  f'rust_version="1.92.0",version="{VERSION}"}} 1']
        return "\n".join(lines) + "\n"


class FakeVector:
    """Tails `path` (kubernetes_logs in its place) and ships each line, with `fields` added (the profile's transform),
    to `endpoint`'s _bulk; `api_version` "v8" (what the profile sets) or "auto" (the sink's default)."""

    def __init__(self, endpoint: str, path: Path, fields: dict[str, Any], *, api_version: str = "v8",
                 index: str = "logs-%Y-%m-%d", initial_backoff: float = INITIAL_BACKOFF) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.path = Path(path)
        self.fields = fields
        self.api_version = api_version
        self.index = index
        self.initial_backoff = initial_backoff
        self.metrics = VectorMetrics(socket.gethostname())
        self.log: list[str] = []  # the error/warn lines Vector writes for the sink (retries.rs, service.rs)
        self.statuses: list[int] = []  # -1: no answer
        self.paused = False
        self._offset = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: FakeServer | None = None
        self._major: int | None = None

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> "FakeVector":
        server = FakeServer()
        server.route("GET", r"/metrics", lambda r: Response(200, self.metrics.exposition(),
                                                            content_type="text/plain; version=0.0.4"))
        self._server = server.start()
        for c in (SINK, SOURCE):  # registered at start-up: the counters exist at 0 before any event
            self.metrics.add("component_sent_events_total", c, 0)
            self.metrics.add("component_errors_total", c, 0, error_type="request_failed", stage="sending")
        self.metrics.set("buffer_events", SINK, 0, stage="0", buffer_type="memory")
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        if self._server:
            self._server.stop()

    @property
    def metrics_url(self) -> str:
        assert self._server, "vector not started"
        return self._server.url + "/metrics"

    # -- the pipeline -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            batch = self._read()
            if batch:
                self._stop.wait(BATCH_TIMEOUT)  # the batch's timeout: lines of the next second join it
                batch += self._read()
                self._send(batch)
            else:
                self._stop.wait(0.1)

    def _read(self) -> list[dict]:
        if self.paused or not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        now = datetime.now(timezone.utc)
        events = [{"message": line, "@timestamp": now.isoformat().replace("+00:00", "Z"), **self.fields}
                  for line in complete.decode().splitlines() if line]
        if events:
            self.metrics.add("component_sent_events_total", SOURCE, len(events))
            self.metrics.add("buffer_received_events_total", SINK, len(events), stage="0", buffer_type="memory")
            self.metrics.set("buffer_events", SINK, len(events), stage="0", buffer_type="memory")
        return events

    def _body(self, events: list[dict]) -> bytes:
        index = datetime.now(timezone.utc).strftime(self.index)
        action: dict[str, Any] = {"_index": index}
        if self._version() < 7:
            action = {"_type": "_doc", **action}
        return "".join(json.dumps({"index": action}) + "\n" + json.dumps(e) + "\n" for e in events).encode()

    def _version(self) -> int:
        """api_version v8, or auto: GET / version.number's major (8 when / does not answer, as common.rs assumes)."""
        if self.api_version != "auto":
            return int(self.api_version.removeprefix("v"))
        if self._major is None:
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=5) as r:
                    self._major = int(json.load(r)["version"]["number"].split(".")[0])
            except (OSError, ValueError, KeyError):
                return 8
        return self._major

    def _send(self, events: list[dict]) -> None:
        """One request with the sink's retry policy: until delivered, rejected, or stopped (attempts never run out)."""
        body = self._body(events)
        previous, current = 0.0, self.initial_backoff
        while not self._stop.is_set():
            status, text = self._post(body)
            retry = status == -1 or status == 429 or (status >= 500 and status != 501)
            if not retry:
                break
            self.log.append(f'WARN vector::sinks::util::retries: Retrying after '
                            f'{"error" if status == -1 else "response"}. reason={text}')
            previous, current = current, min(previous + current, MAX_BACKOFF)  # advance(), then the jittered sleep
            self._stop.wait(random.uniform(0.001, current))
        else:
            return
        self.metrics.set("buffer_events", SINK, 0, stage="0", buffer_type="memory")
        self.metrics.add("buffer_sent_events_total", SINK, len(events), stage="0", buffer_type="memory")
        if 200 <= status < 300 and '"errors":true' not in text.replace(" ", ""):
            self.metrics.add("component_sent_events_total", SINK, len(events))
            return
        reason = _reason(text) if status < 300 else f"client-side error, {status}: {text}"
        self.log.append(f"ERROR vector::sinks::util::retries: Not retriable; dropping the request. reason={reason}")
        self.metrics.add("component_errors_total", SINK, error_type="request_failed", stage="sending")
        self.metrics.add("component_discarded_events_total", SINK, len(events), intentional="false")

    def _post(self, body: bytes) -> tuple[int, str]:
        request = urllib.request.Request(f"{self.endpoint}/_bulk?timeout=60s", data=body, method="POST", headers={
            "Content-Type": "application/x-ndjson", "User-Agent": USER_AGENT})
        self.metrics.add("http_client_requests_sent_total", SINK, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        except OSError as e:
            kind = REFUSED if isinstance(getattr(e, "reason", e), ConnectionRefusedError) else str(e)
            self.metrics.add("http_client_errors_total", SINK, error_kind=kind)
            self.statuses.append(-1)
            return -1, kind
        self.metrics.add("http_client_responses_total", SINK, status=str(status))
        self.statuses.append(status)
        return status, text


def _reason(body: str) -> str:
    """retry.rs get_error_reason: the first item's error as "error type: T, reason: R", else the body."""
    try:
        doc = json.loads(body)
        for item in doc.get("items") or []:
            error = next(iter(item.values())).get("error")
            if error:
                return f"error type: {error['type']}, reason: {error['reason']}"
    except (ValueError, AttributeError, KeyError, StopIteration):
        pass
    return f"error response: {body}"
