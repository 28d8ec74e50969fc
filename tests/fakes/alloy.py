"""FakeAlloy: Grafana Alloy v1.18.1 running loki.source.file → loki.write, as the alloy profile's agent.

The same client as FakePromtail (Alloy's loki.write grew out of Promtail's client), held to grafana/alloy v1.18.1:
- internal/component/loki/write/types.go GetDefaultEndpointOptions: batch_wait 1 s, batch_size 1 MiB,
  remote_timeout 10 s, min_backoff_period 500 ms, max_backoff_period 5 m, max_backoff_retries 10,
  retry_on_http_429 true (so a 429 is retried, not dropped at once);
- internal/component/common/loki/client/shards.go sendBatch: retries 429, 5xx and connection errors (status -1),
  drops on any other status as reason ingester_error (rate_limited when the last answer was 429);
  send(): Content-Type application/x-protobuf, Content-Encoding snappy, User-Agent useragent.Get()
  (internal/useragent: "Alloy/<version> (<goos>; <deploy mode>)", the chart sets ALLOY_DEPLOY_MODE=helm);
- internal/component/loki/write/write.go: external_labels merged under each entry's labels (the entry's win);
- client/metrics.go newMetrics: loki_write_* counters, every one {host, tenant} (dropped ones also {reason},
  five reasons with queue_is_full), the request histogram {status_code, host, tenant}; Alloy's controller
  wraps each component's registerer with component_id and component_path (runtime/internal/controller/
  node_builtin_component.go getManagedOptions), so every series carries them;
- loki.source.file's loki_source_file_read_lines_total{path} (internal/component/loki/source/file/metrics.go);
- internal/service/http/http.go: GET /-/ready answers 200 "Alloy is ready." (503 "Alloy is not ready."); no /config.
"""

from __future__ import annotations

from tests.fakes.promtail import DURATION_BUCKETS, FakePromtail, PromtailMetrics, _MetricsServer, _num
from tests.fakes.server import Response

VERSION = "v1.18.1"
USER_AGENT = f"Alloy/{VERSION} (linux; helm)"
WRITE = ("loki.write.default", "/")  # (component_id, component_path) of the stack's loki.write "default"
SOURCE = ("loki.source.file.pods", "/")  # stack/values/alloy.yaml's loki.source.file "pods"
# client.reasons: reasonGeneric, reasonRateLimited, reasonStreamLimited, reasonLineTooLong, reasonQueueIsFull.
REASONS = ("ingester_error", "rate_limited", "stream_limited", "line_too_long", "queue_is_full")


class AlloyMetrics(PromtailMetrics):
    """The same observations as Promtail's client makes, exported under loki.write's and loki.source.file's names."""

    COUNTERS = {  # name: (help, label names in exposition (sorted) order)
        "loki_write_sent_bytes_total": ("Number of bytes sent.", ("component_id", "component_path", "host", "tenant")),
        "loki_write_sent_entries_total": ("Number of log entries sent to the ingester.",
                                          ("component_id", "component_path", "host", "tenant")),
        "loki_write_dropped_bytes_total": (
            "Number of bytes dropped because failed to be sent to the ingester after all retries.",
            ("component_id", "component_path", "host", "reason", "tenant")),
        "loki_write_dropped_entries_total": (
            "Number of log entries dropped because failed to be sent to the ingester after all retries.",
            ("component_id", "component_path", "host", "reason", "tenant")),
        "loki_write_batch_retries_total": ("Number of times batches has had to be retried.",
                                           ("component_id", "component_path", "host", "tenant")),
        "loki_source_file_read_lines_total": ("Number of lines read.", ("component_id", "component_path", "path")),
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

    def exposition(self) -> str:
        text = super().exposition().replace("promtail_request_duration_seconds", "<histogram>")
        lines = [line for line in text.splitlines() if "<histogram>" not in line]
        with self._lock:
            if self.durations:
                name = "loki_write_request_duration_seconds"
                lines += [f"# HELP {name} Duration of send requests.", f"# TYPE {name} histogram"]
                for (host, code), seen in sorted(self.durations.items()):
                    base = f'component_id="{WRITE[0]}",component_path="{WRITE[1]}",host="{host}",status_code="{code}",tenant=""'
                    for bound in DURATION_BUCKETS:
                        lines.append(f'{name}_bucket{{{base},le="{bound}"}} {sum(1 for s in seen if s <= bound)}')
                    lines.append(f'{name}_bucket{{{base},le="+Inf"}} {len(seen)}')
                    lines.append(f"{name}_sum{{{base}}} {_num(sum(seen))}")
                    lines.append(f"{name}_count{{{base}}} {len(seen)}")
        return "\n".join(lines) + "\n"


class _AlloyServer(_MetricsServer):
    def routes_of_the_agent(self, config) -> None:
        """Alloy's /-/ready; it serves no running config page (its UI's API is not read by the suites)."""
        self.ready = True
        self.route("GET", r"/-/ready", lambda r: Response(200, "Alloy is ready.\n") if self.ready
                   else Response(503, "Alloy is not ready.\n"))


class FakeAlloy(FakePromtail):
    """Tails `path` (loki.source.file) and ships its lines to `loki_url` with loki.write's defaults."""

    AGENT = "alloy"
    REASONS = REASONS
    user_agent = USER_AGENT
    headers = {"Content-Encoding": "snappy"}  # shards.go send: contentEncoding
    metrics_class = AlloyMetrics
    server_class = _AlloyServer

    @property
    def ready_url(self) -> str:
        assert self._server, "alloy not started"
        return self._server.url + "/-/ready"
