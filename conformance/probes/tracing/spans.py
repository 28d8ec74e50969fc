"""What the tracing checks read: the spans of one forced-traced request in Jaeger, which cluster each came from,
and what is wrong when they are not one trace from both clusters' sidecars.

Facts (istio/istio 1.29.6 pilot/pkg/networking/core/tracing.go): every sidecar span carries the custom tags
istio.canonical_service, istio.namespace, istio.mesh_id and istio.cluster_id (buildServiceTags: the proxy's
ClusterID), so istio.cluster_id tells the cluster; the zipkin provider sends Zipkin v2 JSON to /api/v2/spans
with 128-bit trace ids and no shared span context (zipkinConfig), so the client and server sidecars each send
their own span of the request. Envoy tags each span with http.url (scheme, host and path with its query), which
is how the check finds its own request among the others.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from conformance.clients.jaeger import JaegerClient
from conformance.core.manifests import APP, load

CLUSTER_TAG = "istio.cluster_id"
URL_TAG = "http.url"
MARKER_PARAM = "conformance-trace"
FORCE_TRACE = "x-envoy-force-trace"
# What puts the sidecars' spans into Jaeger (stack/manifests/istio-tracing.yaml, telemetry-tracing.yaml).
PROVIDER_SETTING = ("meshConfig.extensionProviders zipkin (zipkin.istio-system.svc.cluster.local:9411) and the "
                    "Telemetry mesh-default in istio-system naming it")
# How a remote's sidecar reaches the collector: istiod gives it the zipkin Service's endpoints, the primary's
# Jaeger pod, which it reaches over the clusters' pod-network routes (one network, as for the sample server).
REMOTE_PATH = ("the remote's Envoys send to outbound|9411||zipkin.istio-system.svc.cluster.local, the primary's "
               "Jaeger pod across the pod-network route")


@dataclass(frozen=True)
class Workload:
    """A sidecar's Jaeger service name is its Envoy's service cluster, `<app label>.<namespace>`."""

    name: str
    namespace: str
    app: str

    @property
    def jaeger_service(self) -> str:
        return f"{self.app}.{self.namespace}"


def _workload(file: str) -> Workload:
    doc = load(APP / file)
    return Workload(doc["metadata"]["name"], doc["metadata"]["namespace"], doc["spec"]["template"]["metadata"]["labels"]["app"])


def server_workload() -> Workload:
    """The sample server on the primary (stack/app/server.yaml)."""
    return _workload("server.yaml")


def client_workload() -> Workload:
    """The injected curl pod every remote keeps (stack/app/sleep.yaml): the forced request's client."""
    return _workload("sleep.yaml")


def server_service() -> tuple[str, str, int]:
    """(namespace, name, port) of the sample server's Service (stack/app/service.yaml)."""
    doc = load(APP / "service.yaml")
    return doc["metadata"]["namespace"], doc["metadata"]["name"], int(doc["spec"]["ports"][0]["port"])


def new_marker() -> str:
    return uuid.uuid4().hex[:16]


def request_path(marker: str) -> str:
    """The server's path with the marker in the query: Envoy's http.url tag then names this request only."""
    return f"/hello?{MARKER_PARAM}={marker}"


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    service: str  # its process' serviceName
    kind: str  # span.kind: client or server
    cluster: str  # istio.cluster_id, "" when the span has none
    url: str


def tag(tags: list[dict], key: str) -> str:
    return next((str(t.get("value", "")) for t in tags or [] if t.get("key") == key), "")


def spans_of(trace: dict) -> list[Span]:
    """The spans of a trace of Jaeger's JSON API, with their process' service and their cluster tag."""
    processes = trace.get("processes") or {}
    out = []
    for s in trace.get("spans") or []:
        process = processes.get(s.get("processID"), {})
        tags = list(s.get("tags") or []) + list(process.get("tags") or [])
        out.append(Span(s.get("traceID", trace.get("traceID", "")), s.get("spanID", ""), process.get("serviceName", ""),
                        tag(tags, "span.kind"), tag(tags, CLUSTER_TAG), tag(tags, URL_TAG)))
    return out


def request_spans(traces: list[dict], marker: str) -> list[Span]:
    """Every span of the traces that belongs to the request: a trace counts when one of its spans has the marker."""
    seen: dict[tuple[str, str], Span] = {}
    for t in traces:
        spans = spans_of(t)
        if any(f"{MARKER_PARAM}={marker}" in s.url for s in spans):
            for s in spans:
                seen[(s.trace_id, s.span_id)] = s
    return list(seen.values())


def find_request(jaeger: JaegerClient, marker: str, services: list[str], start_us: int, end_us: int) -> list[Span]:
    """The request's spans, looked up under each sidecar's service (a trace Jaeger holds under either)."""
    traces = []
    for service in services:
        traces += jaeger.traces(service, start_us, end_us)
    return request_spans(traces, marker)


@dataclass
class Verdict:
    """What the spans found say about one request from `source` to the primary."""

    spans: list[Span]
    source: str
    primary: str
    trace_ids: list[str] = field(init=False)
    clusters: dict[str, set[str]] = field(init=False)  # trace id -> clusters of its spans

    def __post_init__(self) -> None:
        self.trace_ids = sorted({s.trace_id for s in self.spans})
        self.clusters = {t: {s.cluster for s in self.spans if s.trace_id == t} for t in self.trace_ids}

    @property
    def all_clusters(self) -> set[str]:
        return {s.cluster for s in self.spans}

    @property
    def ok(self) -> bool:
        return len(self.trace_ids) == 1 and {self.source, self.primary} <= self.all_clusters

    @property
    def split(self) -> bool:
        """Spans from both clusters, under more than one trace id: the context was not propagated, for good."""
        return len(self.trace_ids) > 1 and {self.source, self.primary} <= self.all_clusters

    @property
    def broken(self) -> str:
        """Which sidecars failed: 'source' (theirs are missing or split off), or 'primary' (nothing at all, or
        only the remote's)."""
        if not self.spans or self.primary not in self.all_clusters:
            return "primary"
        return "source"

    def describe(self) -> str:
        """One line: the spans seen, by trace id and cluster."""
        if not self.spans:
            return "Jaeger holds no span of the request"
        parts = []
        for t in self.trace_ids:
            mine = [s for s in self.spans if s.trace_id == t]
            where = ", ".join(f"{s.kind or 'span'} from {s.cluster or '(no ' + CLUSTER_TAG + ')'} ({s.service})" for s in mine)
            parts.append(f"trace {t}: {where}")
        return "; ".join(parts)

    def diagnosis(self) -> str:
        """Why the spans are not one trace from both clusters' sidecars."""
        src, p = self.source, self.primary
        if not self.spans:
            return (f"no sidecar's span of the forced-traced request reached the {p} Jaeger, not even the {p} server's: "
                    f"the sidecars send no spans (tracing provider or sampling: {PROVIDER_SETTING}) or cannot reach "
                    "the collector (the zipkin Service, port 9411)")
        if p not in self.all_clusters:
            return (f"the request's spans come only from {', '.join(sorted(self.all_clusters))}, none from the {p} "
                    f"server's sidecar: the {p} sidecars send no spans ({PROVIDER_SETTING})")
        if src not in self.all_clusters:
            return (f"the request's spans come only from the {p} sidecars, none from {src}'s: the {src} sidecars do not "
                    f"reach the {p} Jaeger's zipkin collector ({REMOTE_PATH}), or no tracing provider applies to them")
        return (f"the request's spans are split across {len(self.trace_ids)} trace ids: the trace context (B3 "
                f"x-b3-traceid / traceparent) was not propagated from the {src} client's sidecar to the {p} server's")
