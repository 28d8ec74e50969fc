"""tracing (optional part): Jaeger on the primary holds one trace, from both clusters' sidecars, of a forced-traced
request from each remote's client to the primary's server, and Kiali's tracing integration answers for that service."""

from __future__ import annotations

import json
import time

import pytest

from conformance.clients.jaeger import JaegerClient
from conformance.clients.kiali import KialiClient
from conformance.core import timing
from conformance.core.eventually import NotYet, eventually
from conformance.core.hops import hop
from conformance.core.http import APIError, ServiceError
from conformance.core.outcomes import Failed, NotApplicable, PreconditionUnmet, TimedOut
from conformance.probes.tracing.trace_request import NotSent, Sent, send_forced_request
from conformance.probes.tracing.spans import Verdict, client_workload, find_request, server_service, server_workload
from fixtures.clients import endpoint_or_skip

pytestmark = [pytest.mark.tracing, pytest.mark.part("tracing")]

READY_WAIT = timing.ready()
# Envoy's zipkin tracer sends its buffer every 5 s (runtime tracing.zipkin.flush_interval_ms, default 5000) or at 5
# spans (tracing.zipkin.min_flush_spans); Jaeger's batch processor flushes every 200 ms: a few rounds cover a loaded
# machine.
SPANS_WAIT = timing.spans_stored()
FOLLOW = timing.spans_follow()  # one cluster's spans in Jaeger: the other's come within this or not at all
KIALI_WAIT = timing.spans_stored()  # Kiali asks Jaeger: the same spans
# Jaeger's search window around the request: the cluster's clocks and the runner's may differ by this much.
SKEW_US = 120 * 1_000_000


@pytest.fixture(scope="session")
def jaeger(access, primary) -> JaegerClient:
    """The primary's Jaeger query API (Istio's addon: Service tracing, base path /jaeger)."""
    return JaegerClient(endpoint_or_skip(access, primary, "jaeger").http)


def send_or_fail(access, cluster, name: str) -> Sent:
    """The forced-traced request; a request that cannot be made, or that the server does not answer, is named."""
    try:
        sent = send_forced_request(access, cluster)
    except NotSent as e:
        raise PreconditionUnmet(name, str(e)) from None
    if not 200 <= sent.status < 300:
        raise Failed(name, f"the forced-traced request from {cluster.name}'s client answered {sent.status or 'nothing'}, "
                           "not 2xx: the mesh does not carry it (the mesh checks say where)", f"{sent.via}: GET {sent.url}")
    return sent


@pytest.mark.hop("jaeger[{primary}]")
@pytest.mark.requirement("must")
def test_jaeger_answers_its_query_api(primary, jaeger, record_property):
    """The primary's Jaeger answers /api/services through the service proxy."""
    name = hop("jaeger", primary, primary)
    services = eventually(jaeger.services, hop=name, what="Jaeger's query API not answering", wait=READY_WAIT,
                          unreachable_is_final=True)
    record_property("jaeger_services", ",".join(sorted(services)))


@pytest.mark.hop(needs=["jaeger[{primary}]"])  # the trace is read from Jaeger's query API: down, it cannot be observed
@pytest.mark.requirement("must")
@pytest.mark.writes
def test_forced_trace_from_the_remote_is_one_trace_from_both_clusters(remote, primary, access, jaeger, record_property):
    """A request from the remote's client to the primary's server, with x-envoy-force-trace: true, is one trace in
    the primary's Jaeger with spans from both clusters' sidecars."""
    name = hop("tracing", remote, primary)
    sent = send_or_fail(access, remote, name)
    record_property("request_via", sent.via)
    services = [server_workload().jaeger_service, client_workload().jaeger_service]

    def look() -> Verdict:
        now_us = int(time.time() * 1e6)
        return Verdict(find_request(jaeger, sent.marker, services, sent.sent_us - SKEW_US, now_us + SKEW_US),
                       remote.name, primary.name)

    one_side: list[float] = []  # when the spans of only one of the two clusters were first seen

    def probe() -> Verdict:
        verdict = look()
        if verdict.split:  # each span keeps the trace id its sidecar gave it: no later span joins them
            raise Failed(name, verdict.diagnosis(), verdict.describe(), final=True)
        if not verdict.ok:
            if len(verdict.all_clusters & {remote.name, primary.name}) == 1:
                one_side[:] = one_side or [time.monotonic()]
                if (waited := time.monotonic() - one_side[0]) > FOLLOW.scaled():
                    broken = name if verdict.broken == "source" else hop("tracing", primary, primary)
                    raise Failed(broken, f"{verdict.diagnosis()} ({waited:.0f} s after the other cluster's spans were "
                                         f"in Jaeger: each sidecar sends within one {timing.STACK.envoy_flush:.0f} s "
                                         "flush interval of the request's end)", verdict.describe(), final=True)
            raise NotYet(verdict.describe())
        return verdict

    started = time.monotonic()
    try:
        verdict = eventually(probe, hop=name, what=f"no single trace of the request from {remote.name} with spans from "
                                                   f"both clusters in the {jaeger.name}", wait=SPANS_WAIT)
    except TimedOut as e:
        if e.hop != name:  # Jaeger itself unreachable: that hop is the broken one
            raise
        try:
            last = look()
        except ServiceError:
            raise e from None  # Jaeger stopped answering: the wait's own account stands
        broken = name if last.broken == "source" else hop("tracing", primary, primary)
        raise TimedOut(broken, f"{e.diagnosis}; {last.diagnosis()}", f"{e.evidence}\nrequest: {sent.via}: GET {sent.url}") from None
    record_property("trace_id", verdict.trace_ids[0])
    record_property("trace_spans", len(verdict.spans))
    record_property("trace_clusters", ",".join(sorted(verdict.all_clusters)))
    record_property("trace_wait_seconds", round(time.monotonic() - started, 2))


# Kiali reads the traces from the same Jaeger query service: with Jaeger down it stops at once, naming that check.
@pytest.mark.hop(needs=["jaeger[{primary}]"])
@pytest.mark.requirement("must")
@pytest.mark.writes
def test_kiali_tracing_answers_for_the_server(topology, primary, access, jaeger, record_property):
    """Kiali's tracing integration is on and lists the forced-traced request's trace for the primary's server."""
    name = hop("kiali-tracing", primary, primary)
    kiali = KialiClient(endpoint_or_skip(access, primary, "kiali").http)
    info = eventually(kiali.tracing_info, hop=name, what="Kiali's /api/tracing not answering", wait=READY_WAIT)
    if not info.get("enabled"):
        raise Failed(name, "Kiali's tracing integration is off (GET /api/tracing: enabled false): set the Kiali CR's "
                           "external_services.tracing.enabled: true with internal_url at the Jaeger query service")
    record_property("kiali_tracing_internal_url", info.get("internalURL", ""))
    if not topology.remotes:
        raise NotApplicable("the stack has no remote cluster, and so no sample client (stack/app/sleep.yaml) to send from")
    sent = send_or_fail(access, topology.remotes[0], name)
    namespace, service, _ = server_service()

    def probe() -> str:
        try:
            answer = kiali.service_traces(namespace, service, primary.name, sent.sent_us - SKEW_US)
        except APIError as e:
            if e.status == 503:  # handlers/tracing.go ServiceTraces: the tracing backend's error, as Kiali says it
                raise NotYet(f"Kiali answers 503: {kiali_error(e)}") from None
            raise
        ids = [t.get("traceID", "") for t in answer.get("data") or []
               if any(sent.marker in str(tag.get("value", "")) for s in t.get("spans") or [] for tag in s.get("tags") or [])]
        if not ids:
            raise NotYet(f"Kiali lists {len(answer.get('data') or [])} traces of {answer.get('tracingServiceName')}, "
                         "none of the request")
        return ids[0]

    def why() -> str:
        try:
            kiali.service_traces(namespace, service, primary.name, sent.sent_us - SKEW_US)
        except APIError as e:
            return f"Kiali cannot read its tracing backend ({info.get('internalURL')}): {kiali_error(e)}"
        return f"Kiali reads its tracing backend ({info.get('internalURL')}) but not the request's trace"

    trace_id = eventually(probe, hop=name, what=f"Kiali lists no trace of the request for {namespace}/{service}",
                          wait=KIALI_WAIT, diagnose=why)
    record_property("kiali_trace_id", trace_id)


def kiali_error(e: APIError) -> str:
    """Kiali's {"error": ...} body (handlers/base.go RespondWithError), else the body as it came."""
    try:
        return str(json.loads(e.body).get("error") or e.body)
    except (ValueError, AttributeError):
        return e.body
