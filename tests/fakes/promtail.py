"""FakePromtail: a file-tailing log agent that ships to a Loki URL as Promtail 2.9.3 does.

Held to what the real Promtail 2.9.3 did in front of a capture server (../shared/contracts/loki-2.9.3/README.md)
and to its client (grafana/loki v2.9.3 clients/pkg/promtail/client: client.go, batch.go, config.go):
- a fresh positions file ships what the file already holds, from offset 0; a restart resumes at the offset;
- a line's labels are external_labels + the scrape config's static labels + `filename`, nothing else;
- one batch at a time, sent once it is `batch_wait` (1 s) old (checked every batch_wait/10) or 1 MiB big;
- protobuf PushRequest, snappy block encoded, `Content-Type: application/x-protobuf`, `User-Agent: promtail/2.9.3`;
- 429, 5xx and connection errors are retried with dskit backoff (0.5 s doubling to 5 min, jittered within
  [d, 2d), 10 attempts), other statuses drop the batch at once as `reason="ingester_error"`;
- its own /metrics with the client's metric names and labels (status_code="-1" for connection errors).
"""

from __future__ import annotations

import html
import http.client
import queue
import random
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Callable

import cramjam

from tests.fakes.exposition import family, histogram
from tests.fakes.server import FakeServer, Response

JOB = "conformance-canary"
VERSION = "2.9.3"
USER_AGENT = f"promtail/{VERSION}"  # client.UserAgent: promtail/<build.Version>
BATCH_SIZE = 1024 * 1024  # client.batchsize default (BatchSize = 1 MiB)
REASONS = ("ingester_error", "rate_limited", "stream_limited", "line_too_long")  # client.Reasons
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)  # prometheus.DefBuckets
Labels = tuple[tuple[str, str], ...]


@dataclass
class PushRecord:
    """One HTTP push attempt; status -1 means the connection failed (as Promtail's status_code label)."""

    status: int
    entries: int
    body: str
    at: float = 0.0  # time.monotonic() when the attempt was made


# -- wire format: logproto.PushRequest (grafana/loki v2.9.3 pkg/push/push.proto) -------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _bytes_field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _int_field(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value) if value else b""  # proto3 omits zero scalars


def labels_string(labels: Labels) -> str:
    """batch.labelsMapToString: `{a="1", b="2"}` sorted by name, values Go-quoted."""
    quote = lambda v: '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'  # noqa: E731
    return "{" + ", ".join(f"{k}={quote(v)}" for k, v in sorted(labels)) + "}"


def encode_push(streams: dict[Labels, list[tuple[int, str]]]) -> bytes:
    """PushRequest{streams=1: StreamAdapter{labels=1, entries=2: EntryAdapter{timestamp=1{seconds=1, nanos=2}, line=2}}},
    snappy block encoded as batch.encode does."""
    req = b""
    for labels, entries in streams.items():
        stream = _bytes_field(1, labels_string(labels).encode())
        for ts, line in entries:
            stamp = _int_field(1, ts // 1_000_000_000) + _int_field(2, ts % 1_000_000_000)
            stream += _bytes_field(2, _bytes_field(1, stamp) + _bytes_field(2, line.encode()))
        req += _bytes_field(1, stream)
    return bytes(cramjam.snappy.compress_raw(req))


# -- backoff: grafana/dskit backoff (MinBackoff, MaxBackoff, MaxRetries) --------------------------
@dataclass
class Backoff:
    """Delays jittered in [min, 2·min), both doubling up to max; not ongoing after max_retries waits."""

    min_backoff: float
    max_backoff: float
    max_retries: int
    retries: int = 0
    _low: float = field(init=False)
    _high: float = field(init=False)

    def __post_init__(self) -> None:
        self._low, self._high = self.min_backoff, min(self.min_backoff * 2, self.max_backoff)

    @property
    def ongoing(self) -> bool:
        return self.max_retries == 0 or self.retries < self.max_retries

    def next_delay(self) -> float:
        self.retries += 1
        if self._low >= self._high:
            return self._low
        delay = random.uniform(self._low, self._high)
        if self._high < self.max_backoff:
            self._low, self._high = min(self._low * 2, self.max_backoff), min(self._high * 2, self.max_backoff)
        return delay


# -- metrics ------------------------------------------------------------------------------------
class PromtailMetrics:
    """The client's metrics (client.NewMetrics) and the file target's read counters, in exposition format."""

    COUNTERS = {  # name: (help, label names in exposition (sorted) order)
        "promtail_encoded_bytes_total": ("Number of bytes encoded and ready to send.", ("host",)),
        "promtail_sent_bytes_total": ("Number of bytes sent.", ("host",)),
        "promtail_sent_entries_total": ("Number of log entries sent to the ingester.", ("host",)),
        "promtail_dropped_bytes_total": (
            "Number of bytes dropped because failed to be sent to the ingester after all retries.",
            ("host", "reason", "tenant")),
        "promtail_dropped_entries_total": (
            "Number of log entries dropped because failed to be sent to the ingester after all retries.",
            ("host", "reason", "tenant")),
        "promtail_batch_retries_total": ("Number of times batches has had to be retried.", ("host", "tenant")),
        "promtail_read_bytes_total": ("Number of bytes read.", ("path",)),
        "promtail_read_lines_total": ("Number of lines read.", ("path",)),
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in self.COUNTERS}
        self.durations: dict[tuple[str, str], list[float]] = {}  # (host, status_code) -> observations

    def add(self, name: str, labels: tuple[str, ...], value: float = 1.0) -> None:
        with self._lock:
            series = self.counters[name]
            series[labels] = series.get(labels, 0.0) + value

    def get(self, name: str, labels: tuple[str, ...]) -> float:
        with self._lock:
            return self.counters[name].get(labels, 0.0)

    def observe(self, host: str, status: int, seconds: float) -> None:
        with self._lock:
            self.durations.setdefault((host, str(status)), []).append(seconds)

    # cmd/promtail/main.go registers version.NewCollector("promtail"): the build's labels on a constant 1.
    BUILD_INFO = ("# HELP promtail_build_info A metric with a constant '1' value labeled by version, revision, branch, "
                  "goversion from which promtail was built, and the goos and goarch for the build.",
                  "# TYPE promtail_build_info gauge",
                  'promtail_build_info{branch="HEAD",goarch="amd64",goos="linux",goversion="go1.21.3",'
                  'revision="2e3fd0b9",tags="netgo",version="2.9.3"} 1')

    def exposition(self) -> str:
        lines = list(self.BUILD_INFO)
        with self._lock:
            for name, (help_text, label_names) in self.COUNTERS.items():
                lines += family(name, help_text, "counter", label_names, self.counters[name], _num)
            lines += histogram("promtail_request_duration_seconds", "Duration of send requests.", DURATION_BUCKETS,
                               {f'host="{host}",status_code="{code}"': seen
                                for (host, code), seen in sorted(self.durations.items())}, str)
        return "\n".join(lines) + "\n"


def _num(v: float) -> str:
    return str(int(v)) if v == int(v) else repr(v)


class _MetricsServer(FakeServer):
    def __init__(self, metrics: PromtailMetrics, config: Callable[[], str] = lambda: "") -> None:
        super().__init__()
        self.metrics = metrics
        self.route("GET", r"/metrics", lambda r: Response(200, metrics.exposition(), "text/plain; version=0.0.4; charset=utf-8"))
        self.routes_of_the_agent(config)

    def routes_of_the_agent(self, config: Callable[[], str]) -> None:
        """Promtail's /ready and /config."""
        self.route("GET", r"/ready", lambda r: Response(200, "Ready"))
        # server.go config(): templates/config.html puts Config.String() (yaml.Marshal) in <pre id="config_yaml">.
        self.route("GET", r"/config", lambda r: Response(
            200, f'<html><body><pre id="config_yaml">{html.escape(config())}</pre></body></html>', "text/html; charset=utf-8"))


# -- the agent ------------------------------------------------------------------------------------
class FakePromtail:
    """Tails `path` in a background thread and ships its lines to `loki_url` (…/loki/api/v1/push)."""

    AGENT = "promtail"  # thread names
    REASONS = REASONS  # the drop reasons whose counters a new batch's tenant exports at 0
    user_agent = USER_AGENT
    headers: dict[str, str] = {}  # more request headers of a push
    metrics_class: type = PromtailMetrics
    server_class: type = _MetricsServer

    def __init__(
        self,
        loki_url: str,
        path: str | Path,
        external_labels: dict[str, str] | None = None,  # wrong/missing cluster label: docs/troubleshooting.md#logs-arrive-without-the-cluster-label
        static_labels: dict[str, str] | None = None,  # the scrape config's static_configs labels
        batch_wait: float = 1.0,  # client.batchwait default 1 s
        min_backoff: float = 0.5,  # backoff_config.min_period default
        max_backoff: float = 300.0,  # backoff_config.max_period default 5 m
        max_retries: int = 10,  # backoff_config.max_retries default
        timeout: float = 10.0,  # client.timeout default
        poll_interval: float = 0.15,  # how often the file is read: the observed 0.05-0.2 s before batching
    ) -> None:
        self.loki_url = loki_url
        self.path = Path(path)
        self.external_labels = dict(external_labels or {})
        self.static_labels = dict({"job": JOB} if static_labels is None else static_labels)
        self.batch_wait = batch_wait
        self.min_backoff, self.max_backoff, self.max_retries = min_backoff, max_backoff, max_retries
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.host = urllib.parse.urlsplit(loki_url).netloc  # the `host` label: the client URL's host
        # Fault switches -------------------------------------------------------
        self.paused = False  # reads nothing, offsets do not move: docs/troubleshooting.md#running-but-shipping-nothing
        self.extra_delay_seconds = 0.0  # each batch waits this long before it is sent (slow/backlogged client)
        # Observations ----------------------------------------------------------
        self.metrics = self.metrics_class()
        self.pushes: list[PushRecord] = []
        self.read_bytes = 0  # promtail_read_bytes_total
        self._queue: queue.Queue[tuple[Labels, int, str]] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: _MetricsServer | None = None
        self._offset = 0  # the positions file: fresh at construction, kept across stop/start
        self._partial = b""
        for name in ("promtail_encoded_bytes_total", "promtail_sent_bytes_total", "promtail_sent_entries_total"):
            self.metrics.add(name, (self.host,), 0)  # exported at 0 before the first batch, as the client does

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> "FakePromtail":
        self._stop.clear()
        self._server = self.server_class(self.metrics, self.config_yaml)
        self._server.start()
        self._threads = [
            threading.Thread(target=self._tail_loop, name=f"{self.AGENT}-tail", daemon=True),
            threading.Thread(target=self._send_loop, name=f"{self.AGENT}-send", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Stop reading, send the pending batch once (no retries: the client's context is cancelled), join."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 5)
        self._threads = []
        if self._server:
            self._server.stop()
            self._server = None

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stop.is_set()

    @property
    def metrics_url(self) -> str:
        assert self._server, "promtail not started"
        return self._server.url + "/metrics"

    def __enter__(self) -> "FakePromtail":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- observations -----------------------------------------------------------------
    @property
    def statuses(self) -> list[int]:
        """HTTP status of every push attempt, in order (-1 = connection failed)."""
        return [p.status for p in self.pushes]

    @property
    def sent_entries(self) -> int:
        """promtail_sent_entries_total{host}."""
        return int(self.metrics.get("promtail_sent_entries_total", (self.host,)))

    @property
    def dropped_entries(self) -> int:
        """promtail_dropped_entries_total{host, reason, tenant=""} over every reason."""
        return int(sum(self.metrics.get("promtail_dropped_entries_total", (self.host, r, "")) for r in self.REASONS))

    def config_yaml(self) -> str:
        """The part of the running config /config shows that the suite reads: the client."""
        labels = "".join(f"    {k}: {v}\n" for k, v in sorted(self.external_labels.items()))
        return (f"clients:\n- url: {self.loki_url}\n  batchwait: 1s\n  batchsize: {BATCH_SIZE}\n"
                + (f"  external_labels:\n{labels}" if labels else ""))

    # -- sources ---------------------------------------------------------------------
    def file_labels(self) -> dict[str, str]:
        """external_labels + static labels + filename: what the real agent gives a tailed line."""
        return {**self.external_labels, **self.static_labels, "filename": str(self.path)}

    def emit(self, line: str, namespace: str, pod: str, container: str, app: str) -> None:
        """Ship `line` as if read from a pod's stdout by the kubernetes-pods job."""
        labels = {
            **self.external_labels,
            "namespace": namespace,
            "pod": pod,
            "container": container,
            "app": app,
            "job": f"{namespace}/{app}",
            "filename": f"/var/log/pods/{namespace}_{pod}_fake-uid/{container}/0.log",
            "stream": "stdout",
        }
        item = (tuple(sorted(labels.items())), time.time_ns(), line)
        if self.running:
            self._queue.put(item)
        else:
            self._ship([item])

    def _tail_loop(self) -> None:
        while not self._stop.is_set():
            if not self.paused:
                self._read_new_lines()
            self._stop.wait(self.poll_interval)

    def _read_new_lines(self) -> None:
        if not self.path.exists():
            return
        size = self.path.stat().st_size
        if size < self._offset:  # truncated or rotated: start over, as Promtail does
            self._offset, self._partial = 0, b""
        if size == self._offset:
            return
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read(size - self._offset)
        self._offset += len(chunk)
        self.read_bytes += len(chunk)
        self.metrics.add("promtail_read_bytes_total", (str(self.path),), len(chunk))
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        key = tuple(sorted(self.file_labels().items()))
        for raw in complete:
            self.metrics.add("promtail_read_lines_total", (str(self.path),))
            self._queue.put((key, time.time_ns(), raw.decode(errors="replace")))

    # -- sending (client.run) -------------------------------------------------------------
    def _send_loop(self) -> None:
        batch: list[tuple[Labels, int, str]] = []
        size, created = 0, 0.0
        tick = max(self.batch_wait / 10, 0.01)  # maxWaitCheckFrequency, at least 10 ms
        while True:
            try:
                item = self._queue.get(timeout=tick)
            except queue.Empty:
                item = None
            if item is not None:
                entry_size = len(item[2].encode())
                if batch and size + entry_size > BATCH_SIZE:
                    self._ship(batch)
                    batch, size = [], 0
                if not batch:
                    created = time.monotonic()
                    for reason in self.REASONS:  # initBatchMetrics: the tenant's counters exported at 0
                        self.metrics.add("promtail_dropped_entries_total", (self.host, reason, ""), 0)
                        self.metrics.add("promtail_dropped_bytes_total", (self.host, reason, ""), 0)
                    self.metrics.add("promtail_batch_retries_total", (self.host, ""), 0)
                batch.append(item)
                size += entry_size
            if self._stop.is_set() and self._queue.empty():
                if batch:
                    self._ship(batch)
                return
            if batch and time.monotonic() - created >= self.batch_wait:
                self._ship(batch)
                batch, size = [], 0

    def _ship(self, batch: list[tuple[Labels, int, str]]) -> None:
        """client.sendBatch: retry 429, 5xx and connection errors with backoff; drop on anything else."""
        if self.extra_delay_seconds:
            self._stop.wait(self.extra_delay_seconds)
        body = encode_push(self._streams(batch))
        self.metrics.add("promtail_encoded_bytes_total", (self.host,), len(body))
        self._send(batch, body)

    def _streams(self, batch: list[tuple[Labels, int, str]]) -> dict[Labels, list[tuple[int, str]]]:
        streams: dict[Labels, list[tuple[int, str]]] = {}
        for labels, ts, line in batch:
            merged = tuple(sorted({**self.external_labels, **dict(labels)}.items()))  # entry labels win
            streams.setdefault(merged, []).append((ts, line))
        return streams

    def _send(self, batch: list[tuple[Labels, int, str]], body: bytes) -> None:
        """The send loop both agents share: sent on a 2xx; 429, 5xx and no answer retried with backoff; the batch
        dropped on any other status or when the tries run out ("final error sending batch")."""
        backoff = Backoff(self.min_backoff, self.max_backoff, self.max_retries)
        while True:
            started = time.monotonic()
            status, error = self._post(body)
            self.metrics.observe(self.host, status, time.monotonic() - started)
            self.pushes.append(PushRecord(status, len(batch), error, started))
            if self._dropped_at_once(status):
                return self._drop(batch, body, "rate_limited")
            if 200 <= status < 300:
                self.metrics.add("promtail_sent_bytes_total", (self.host,), len(body))
                self.metrics.add("promtail_sent_entries_total", (self.host,), len(batch))
                return
            if status > 0 and status != 429 and status // 100 != 5:
                break  # not retried
            self._retrying(status, error)
            self.metrics.add("promtail_batch_retries_total", (self.host, ""))
            delay = backoff.next_delay()
            if not backoff.ongoing or self._stop.wait(delay):
                break  # tries used up (no wait after the last), or stopping (the context is cancelled)
        self._giving_up(status, error)
        self._drop(batch, body, "rate_limited" if status == 429 else "ingester_error")

    def _dropped_at_once(self, status: int) -> bool:
        """Whether this answer drops the batch unretried as rate limited: never for Promtail 2.9.3's client."""
        return False

    def _retrying(self, status: int, error: str) -> None:
        """What the agent does before a retry besides counting it: Promtail logs nothing the fake models."""

    def _giving_up(self, status: int, error: str) -> None:
        """What the agent does when it drops the batch besides counting it: Promtail logs nothing the fake models."""

    def _drop(self, batch: list[tuple[Labels, int, str]], body: bytes, reason: str) -> None:
        self.metrics.add("promtail_dropped_entries_total", (self.host, reason, ""), len(batch))
        self.metrics.add("promtail_dropped_bytes_total", (self.host, reason, ""), len(body))

    def _request(self, body: bytes) -> tuple[int, str, str]:
        """POST the batch: (status, reason, the answer's first 1024 bytes as text); OSError when none came."""
        url = urllib.parse.urlsplit(self.loki_url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=self.timeout)  # loopback: no proxy
        try:
            conn.request("POST", url.path or "/", body=body, headers={
                "Content-Type": "application/x-protobuf", "User-Agent": self.user_agent, **self.headers})
            resp = conn.getresponse()
            return resp.status, resp.reason, resp.read(1024).decode(errors="replace")  # maxErrMsgLen
        finally:
            conn.close()

    def _post(self, body: bytes) -> tuple[int, str]:
        try:
            status, _, text = self._request(body)
        except OSError as exc:
            return -1, str(exc)
        return status, text
