"""FakeAlloy: Grafana Alloy v1.18.1 running loki.source.file → loki.write, as the alloy profile's agent.

Held to what a real Alloy v1.18.1 did in front of a real Loki 3.7.6 (../shared/contracts/alloy-1.18.1/README.md:
metric names and labels, the retry schedule and the give-up, the drop reasons, the log lines and their levels) and
to its code, grafana/alloy v1.18.1:
- internal/component/loki/write/types.go GetDefaultEndpointOptions: batch_wait 1 s, batch_size 1 MiB,
  remote_timeout 10 s, min_backoff_period 500 ms, max_backoff_period 5 m, max_backoff_retries 10,
  retry_on_http_429 true (so a 429 is retried, not dropped at once);
- internal/component/common/loki/client/shards.go sendBatch: retries 429, 5xx and connection errors (status -1),
  each retry logged at debug only ("error sending batch, will retry") and counted in batch_retries; when the
  tries run out, or at once on any other status, one error line ("final error sending batch, no retries left,
  dropping data") and the batch dropped as reason ingester_error (rate_limited when the last answer was 429);
  send(): Content-Type application/x-protobuf, Content-Encoding snappy, User-Agent useragent.Get()
  (internal/useragent: "Alloy/<version> (<goos>; <deploy mode>)", the chart sets ALLOY_DEPLOY_MODE=helm);
  an answer other than 2xx is the error `server returned HTTP status <status> (<code>): <first body line>`;
- internal/component/loki/write/write.go: external_labels merged under each entry's labels (the entry's win);
- client/metrics.go newMetrics: loki_write_* series, every one {host, tenant} (dropped ones also {reason}, five
  reasons with queue_is_full, exported at 0 with batch_retries and sent_* once the tenant's first entry is
  queued: shards.go initBatchMetrics), the histograms request_duration_seconds {status_code, host, tenant},
  request_size_bytes and entry_propagation_latency_seconds {host, tenant}; Alloy's controller wraps each
  component's registerer with component_id and component_path (runtime/internal/controller/
  node_builtin_component.go getManagedOptions), so every series carries them;
- loki.source.file's series (internal/component/loki/source/file/metrics.go): read_lines_total (counter),
  read_bytes_total and file_bytes_total (gauges: the position and the file's size) {path}, files_active_total;
- internal/runtime/logging/handler.go: logfmt `ts=<RFC3339Nano UTC> level=<debug|info|warn|error> msg=...`,
  the endpoint's logger adding component_path, component_id, component=endpoint and host (client/endpoint.go);
  the default level is info. Only loki.write's lines are modelled (not Alloy's start-up lines);
- internal/service/http/http.go: GET /-/ready answers 200 "Alloy is ready." (503 "Alloy is not ready."),
  /-/healthy 200 "All Alloy components are healthy."; no /config.

The retry schedule is the real one by default (a batch to a closed port is dropped 256.5-512 s after its append;
402 and 418 s were seen): self-tests that need the give-up pass a smaller min_backoff, and say so.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

from tests.fakes.exposition import family, histogram
from tests.fakes.promtail import DURATION_BUCKETS, FakePromtail, Labels, PromtailMetrics, _MetricsServer, encode_push
from tests.fakes.server import Response

VERSION = "v1.18.1"
USER_AGENT = f"Alloy/{VERSION} (linux; helm)"
WRITE = ("loki.write.default", "/")  # (component_id, component_path) of the stack's loki.write "default"
SOURCE = ("loki.source.file.pods", "/")  # stack/values/alloy.yaml's loki.source.file "pods"
# client.reasons: reasonGeneric, reasonRateLimited, reasonStreamLimited, reasonLineTooLong, reasonQueueIsFull.
REASONS = ("ingester_error", "rate_limited", "stream_limited", "line_too_long", "queue_is_full")
LEVELS = ("debug", "info", "warn", "error")  # slog's, named as go-kit/log's (logging/handler.go replace)
RETRY = "error sending batch, will retry"  # shards.go sendBatch, at debug
GIVE_UP = "final error sending batch, no retries left, dropping data"  # shards.go sendBatch, at error
RATE_LIMITED_DROP = "dropping batch due to rate limiting applied at ingester"  # retry_on_http_429 = false, at warn
KIB, MIB = 1024, 1024 * 1024
SIZE_BUCKETS = (KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, 512 * KIB, MIB, 2 * MIB, 4 * MIB, 8 * MIB, 16 * MIB, 20 * MIB)
LATENCY_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600)
WRITE_LABELS = ("component_id", "component_path", "host", "tenant")
SOURCE_LABELS = ("component_id", "component_path", "path")


def go_quote(value: str) -> str:
    """slog TextHandler: a value is quoted (strconv.Quote) only when empty or holding a space, '=', '"' or a control."""
    if value and not any(c in ' ="' or not c.isprintable() for c in value):
        return value
    return json.dumps(value, ensure_ascii=False)


def go_float(value: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 64), as the exposition writes values and bucket bounds (expfmt writeFloat)."""
    if value == 0:
        return "0"
    digits, point = _shortest(abs(value))
    exp = point - 1
    sign = "-" if value < 0 else ""
    if exp < -4 or exp >= 6:  # shortest: %e when the exponent is < -4 or >= 6
        rest = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{rest}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    whole, frac = (digits + "0" * point)[:point], digits[point:]
    return f"{sign}{whole}{'.' + frac if frac else ''}"


def _shortest(value: float) -> tuple[str, int]:
    """The shortest digits that read back as `value`, and where the decimal point goes (Python's repr, as Go's)."""
    mantissa, _, exponent = f"{value!r}".partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(whole + frac) - len((whole + frac).lstrip("0")))
    return digits.rstrip("0") or "0", point


def logfmt_line(level: str, msg: str, **attrs: str | int) -> str:
    """One line as Alloy's logfmt handler writes it: ts, level, msg, then the attributes in order."""
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    pairs = [("level", level), ("msg", msg), *((k, str(v)) for k, v in attrs.items())]
    return f"ts={ts} " + " ".join(f"{k}={go_quote(v)}" for k, v in pairs)


class AlloyMetrics(PromtailMetrics):
    """The same observations as Promtail's client makes, exported under loki.write's and loki.source.file's names."""

    BUILD_INFO = ()  # not Promtail's build: the recorded series (../shared/contracts/alloy-1.18.1) are the whole list

    COUNTERS = {  # name: (help, label names in exposition (sorted) order)
        "loki_write_sent_bytes_total": ("Number of bytes sent.", WRITE_LABELS),
        "loki_write_sent_entries_total": ("Number of log entries sent to the ingester.", WRITE_LABELS),
        "loki_write_dropped_bytes_total": (
            "Number of bytes dropped because failed to be sent to the ingester after all retries.",
            ("component_id", "component_path", "host", "reason", "tenant")),
        "loki_write_dropped_entries_total": (
            "Number of log entries dropped because failed to be sent to the ingester after all retries.",
            ("component_id", "component_path", "host", "reason", "tenant")),
        "loki_write_batch_retries_total": ("Number of times batches has had to be retried.", WRITE_LABELS),
        "loki_source_file_read_lines_total": ("Number of lines read.", SOURCE_LABELS),
    }
    GAUGES = {  # name: (help, label names); set, not added to
        "loki_source_file_read_bytes_total": ("Number of bytes read.", SOURCE_LABELS),
        "loki_source_file_file_bytes_total": ("Number of bytes total.", SOURCE_LABELS),
        "loki_source_file_files_active_total": ("Number of active files.", ("component_id", "component_path")),
    }
    HISTOGRAMS = {  # name: (help, buckets); labels {component_id, component_path, host, tenant}
        "loki_write_request_size_bytes": ("Number of bytes for requests.", SIZE_BUCKETS),
        "loki_write_entry_propagation_latency_seconds": ("Write latency for entries", LATENCY_BUCKETS),
    }
    # Promtail's observation -> (Alloy's series, the component that exports it, whether it has a tenant label).
    NAMES = {
        "promtail_sent_bytes_total": ("loki_write_sent_bytes_total", WRITE, True),
        "promtail_sent_entries_total": ("loki_write_sent_entries_total", WRITE, True),
        "promtail_dropped_bytes_total": ("loki_write_dropped_bytes_total", WRITE, False),
        "promtail_dropped_entries_total": ("loki_write_dropped_entries_total", WRITE, False),
        "promtail_batch_retries_total": ("loki_write_batch_retries_total", WRITE, False),
        "promtail_read_lines_total": ("loki_source_file_read_lines_total", SOURCE, False),
    }

    def __init__(self) -> None:
        super().__init__()
        self.gauges: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in self.GAUGES}
        self.histograms: dict[str, dict[str, list[float]]] = {name: {} for name in self.HISTOGRAMS}  # by host

    def _alloy(self, name: str, labels: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
        if name not in self.NAMES:
            return None  # e.g. promtail_encoded_bytes_total: loki.write has no such counter
        alloy, component, add_tenant = self.NAMES[name]
        return alloy, (*component, *labels, *(("",) if add_tenant else ()))

    def add(self, name: str, labels: tuple[str, ...], value: float = 1.0) -> None:
        found = self._alloy(name, labels)
        if found:
            super().add(*found, value)

    def get(self, name: str, labels: tuple[str, ...]) -> float:
        found = self._alloy(name, labels)
        return super().get(*found) if found else 0.0

    def set_gauge(self, name: str, labels: tuple[str, ...], value: float) -> None:
        with self._lock:
            self.gauges[name][(*SOURCE, *labels)] = value

    def observe_in(self, name: str, host: str, value: float) -> None:
        """One observation of a {host, tenant=""} histogram."""
        with self._lock:
            self.histograms[name].setdefault(host, []).append(value)

    def exposition(self) -> str:
        text = super().exposition().replace("promtail_request_duration_seconds", "<histogram>")
        lines = [line for line in text.splitlines() if "<histogram>" not in line]
        with self._lock:
            for name, (help_text, label_names) in self.GAUGES.items():
                lines += family(name, help_text, "gauge", label_names, self.gauges[name], go_float)
            durations = {(host, code): seen for (host, code), seen in self.durations.items()}
            histograms = {name: dict(by_host) for name, by_host in self.histograms.items()}
        lines += histogram("loki_write_request_duration_seconds", "Duration of send requests.", DURATION_BUCKETS,
                           {_write_labels(host, code): seen for (host, code), seen in sorted(durations.items())}, go_float)
        for name, (help_text, buckets) in self.HISTOGRAMS.items():
            lines += histogram(name, help_text, buckets,
                               {_write_labels(host): seen for host, seen in sorted(histograms[name].items())}, go_float)
        return "\n".join(lines) + "\n"


def _write_labels(host: str, status_code: str | None = None) -> str:
    """loki.write's labels in exposition (sorted) order, tenant "" (no tenant_id)."""
    code = f',status_code="{status_code}"' if status_code is not None else ""
    return f'component_id="{WRITE[0]}",component_path="{WRITE[1]}",host="{host}"{code},tenant=""'


class _AlloyServer(_MetricsServer):
    def routes_of_the_agent(self, config) -> None:
        """Alloy's /-/ready and /-/healthy; it serves no running config page (its UI's API is not read by the suites)."""
        self.ready = True
        self.route("GET", r"/-/ready", lambda r: Response(200, "Alloy is ready.\n") if self.ready
                   else Response(503, "Alloy is not ready.\n"))
        self.route("GET", r"/-/healthy", lambda r: Response(200, "All Alloy components are healthy.\n"))


class FakeAlloy(FakePromtail):
    """Tails `path` (loki.source.file) and ships its lines to `loki_url` with loki.write's defaults.

    log_level is Alloy's `logging { level }` (info by default); the lines at or above it are kept in `log`
    (and appended to log_path when given), as Alloy writes them to its stderr.
    """

    AGENT = "alloy"
    REASONS = REASONS
    user_agent = USER_AGENT
    headers = {"Content-Encoding": "snappy"}  # shards.go send: contentEncoding
    metrics_class = AlloyMetrics
    server_class = _AlloyServer

    def __init__(self, *args, log_level: str = "info", log_path: str | Path | None = None,
                 retry_on_http_429: bool = True, **options) -> None:
        super().__init__(*args, **options)
        self.metrics = self.metrics_class()  # nothing exported before the first entry (initBatchMetrics)
        self.log_level = log_level
        self.log_path = Path(log_path) if log_path else None
        self.retry_on_http_429 = retry_on_http_429
        self.log: list[str] = []
        self._tenant_seen = False

    @property
    def ready_url(self) -> str:
        assert self._server, "alloy not started"
        return self._server.url + "/-/ready"

    # -- the log ---------------------------------------------------------------------
    def _log(self, level: str, msg: str, **attrs: str | int) -> None:
        """One line of the endpoint's logger, kept when at or above log_level."""
        if LEVELS.index(level) < LEVELS.index(self.log_level):
            return
        line = logfmt_line(level, msg, component_path=WRITE[1], component_id=WRITE[0], component="endpoint",
                           host=self.host, **attrs)
        self.log.append(line)
        if self.log_path:
            with self.log_path.open("a") as f:
                f.write(line + "\n")

    # -- loki.source.file ------------------------------------------------------------------
    def _read_new_lines(self) -> None:
        read = self.metrics.get("promtail_read_lines_total", (str(self.path),))
        super()._read_new_lines()
        if self.path.exists():
            self.metrics.set_gauge("loki_source_file_read_bytes_total", (str(self.path),), self._offset)
            self.metrics.set_gauge("loki_source_file_file_bytes_total", (str(self.path),), self.path.stat().st_size)
        self.metrics.set_gauge("loki_source_file_files_active_total", (), 1 if self.path.exists() else 0)
        if self.metrics.get("promtail_read_lines_total", (str(self.path),)) > read:
            self._init_batch_metrics()

    def emit(self, line: str, namespace: str, pod: str, container: str, app: str) -> None:
        self._init_batch_metrics()
        super().emit(line, namespace, pod, container, app)

    def _init_batch_metrics(self) -> None:
        """shards.go initBatchMetrics: the tenant's first entry exports its counters at 0."""
        if self._tenant_seen:
            return
        self._tenant_seen = True
        for reason in REASONS:
            self.metrics.add("promtail_dropped_entries_total", (self.host, reason, ""), 0)
            self.metrics.add("promtail_dropped_bytes_total", (self.host, reason, ""), 0)
        for name in ("promtail_batch_retries_total", "promtail_sent_bytes_total", "promtail_sent_entries_total"):
            self.metrics.add(name, (self.host, "") if name == "promtail_batch_retries_total" else (self.host,), 0)

    # -- loki.write: shards.go sendBatch -------------------------------------------------
    def _ship(self, batch: list[tuple[Labels, int, str]]) -> None:
        """Send with retries on 429, 5xx and no answer; drop with one error line when they run out or on any other status."""
        if self.extra_delay_seconds:
            self._stop.wait(self.extra_delay_seconds)
        body = encode_push(self._streams(batch))
        self.metrics.observe_in("loki_write_request_size_bytes", self.host, len(body))
        try:
            self._send(batch, body)
        finally:  # reportAsSentData, deferred: every entry of the batch, sent or dropped, from its creation (its read)
            for _, created_ns, _ in batch:
                self.metrics.observe_in("loki_write_entry_propagation_latency_seconds", self.host,
                                        max(0.0, time.time() - created_ns / 1e9))

    def _dropped_at_once(self, status: int) -> bool:
        """A 429 with retry_on_http_429 false: one warning and the batch dropped as rate limited."""
        if status == 429 and not self.retry_on_http_429:
            self._log("warn", RATE_LIMITED_DROP)
            return True
        return False

    def _retrying(self, status: int, error: str) -> None:
        self._log("debug", RETRY, status=status, tenant="", error=error)

    def _giving_up(self, status: int, error: str) -> None:
        self._log("error", GIVE_UP, status=status, tenant="", error=error)

    def _post(self, body: bytes) -> tuple[int, str]:
        """(status, error as Go's http client and send() word it; "" on a 2xx)."""
        try:
            status, reason, text = self._request(body)  # the first line of the answer is kept
        except OSError as exc:
            return -1, f'Post "{self.loki_url}": {_go_dial_error(urllib.parse.urlsplit(self.loki_url).netloc, exc)}'
        if 200 <= status < 300:
            return status, ""
        line = text.split("\n", 1)[0]
        return status, f"server returned HTTP status {status} {reason} ({status}): {line}"


def _go_dial_error(netloc: str, exc: OSError) -> str:
    """net/http's error text for a request that got no answer."""
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {netloc}: connect: connection refused"
    if isinstance(exc, TimeoutError):
        return "context deadline exceeded"
    return str(exc)
