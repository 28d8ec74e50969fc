"""The tracing suite against a real Jaeger v2.13.0, sidecars that trace as Istio 1.29.6's Envoys do, and FakeKiali
reading that Jaeger as Kiali v2.29.0's HTTP tracing client does: healthy, and with each fault."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests import web
from tests.fakes.envoy import TracingSidecar
from tests.fakes.kiali import FakeKiali
from tests.proving_jaeger import JaegerProcess, start_tracing_servers
from tests.suite_runner import run_suites

JAEGER = "suites.test_tracing::test_jaeger_answers_its_query_api"
FORCED = "suites.test_tracing::test_forced_trace_from_the_remote_is_one_trace_from_both_clusters[workstation]"
KIALI = "suites.test_tracing::test_kiali_tracing_answers_for_the_server"
FAULT_SCALE = ("--timeout-scale", "0.1")  # a fault's wait: 6 s of spans that do not come


@dataclass
class TracingGround:
    """Jaeger, the primary's server sidecar, the remote's client sidecar, Kiali; and the topology naming them."""

    folder: Path
    jaeger: JaegerProcess
    server: TracingSidecar
    client: TracingSidecar
    kiali: FakeKiali
    held: list[socket.socket] = field(default_factory=list)

    def closed_port(self, port: int = 0) -> str:
        """A loopback address that refuses connections for the rest of the test: bound, never listening, so no
        test running beside this one is given the port meanwhile."""
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the port of a server just stopped is in TIME_WAIT
        s.bind(("127.0.0.1", port))
        self.held.append(s)
        return f"http://127.0.0.1:{s.getsockname()[1]}"

    def topology(self, parts: object = ("tracing",)) -> Path:
        doc = {"clusters": [
            {"name": "oke", "role": "primary", "provider": "endpoints",
             "services": {"jaeger": self.jaeger.query_url, "kiali": f"{self.kiali.url}/kiali"}},
            {"name": "workstation", "role": "remote", "provider": "endpoints",
             "services": {"helloworld": self.client.url}},
        ]}
        if parts:
            doc["parts"] = list(parts)
        path = self.folder / "topology.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def run(self, *args: str, parts: object = ("tracing",)):
        return run_suites(self.folder, "--topology", str(self.topology(parts)), "-m", "tracing", *args)


@pytest.fixture
def ground(tmp_path) -> TracingGround:
    servers = start_tracing_servers(tmp_path)
    ground = TracingGround(tmp_path, servers.jaeger, servers.server, servers.client, servers.kiali)
    yield ground
    servers.stop()
    for s in ground.held:
        s.close()


def test_healthy_stack_passes_every_tracing_check(ground):
    run = ground.run()
    assert run.code == 0, run.output
    forced = run.properties(FORCED)
    assert forced["trace_clusters"] == "oke,workstation"
    assert forced["trace_spans"] == "2"  # the client sidecar's span and the server sidecar's, no shared context
    assert run.properties(KIALI)["kiali_trace_id"]
    # The Jaeger check runs first (the forced trace needs its hop): the server's service is there once traced.
    services = web.get(f"{ground.jaeger.query_url}/api/services", timeout=10).json()["data"]
    assert "helloworld.sample" in services
    assert "optional parts: tracing" in run.output


def test_a_stack_without_the_part_skips_every_tracing_check_with_the_reason(ground):
    run = ground.run("-rs", parts=())
    assert run.code == 5, run.output  # nothing else was selected: no check ran (INCOMPLETE), none failed
    for case in (JAEGER, FORCED, KIALI):
        assert run.properties(case)["outcome"] == "not_applicable"
    assert "tracing is not a part of this stack" in run.output


def test_remote_sidecars_sending_nowhere_name_the_remotes_hop(ground):
    ground.client.collector = ground.closed_port()  # its reports fail (Envoy's tracing.zipkin.reports_failed)
    # At half the real waits: the server's spans are in Jaeger long before the spans' wait ends, so the client's are
    # judged missing once two flush intervals (and a margin) have passed after them, not at the end of that wait.
    run = ground.run("-k", "forced", "--timeout-scale", "0.5")
    failure = run.failure(FORCED)
    assert run.properties(FORCED)["outcome"] == "failed", failure
    assert failure.startswith("workstation sidecars → oke Jaeger: the request's spans come only from the oke sidecars, "
                              "none from workstation's: the workstation sidecars do not reach the oke Jaeger's zipkin "
                              "collector"), failure
    assert " s after the other cluster's spans were in Jaeger: each sidecar sends within one 5 s flush interval of " \
           "the request's end)" in failure
    assert "server from oke (helloworld.sample)" in failure  # what Jaeger does hold
    assert ground.client.send_errors  # the sidecar did try, and failed


def test_no_sidecar_sending_names_the_primarys_hop(ground):
    ground.client.collector = ground.server.collector = None
    run = ground.run("-k", "forced", *FAULT_SCALE)
    failure = run.failure(FORCED)
    assert "oke sidecars → oke Jaeger: " in failure
    assert "no sidecar's span of the forced-traced request reached the oke Jaeger, not even the oke server's" in failure
    assert "Jaeger holds no span of the request" in failure


def test_a_context_not_propagated_splits_the_request_into_two_traces_named_at_once(ground):
    ground.client.propagate = False
    run = ground.run("-k", "forced")  # the real wait: the split is final once both spans are in Jaeger
    failure = run.failure(FORCED)
    assert run.properties(FORCED)["outcome"] == "failed", failure
    assert failure.startswith("workstation sidecars → oke Jaeger: the request's spans are split across 2 trace ids: "
                              "the trace context (B3"), failure


def test_a_request_the_mesh_does_not_carry_is_named_at_once(ground):
    ground.client.upstream = ground.closed_port()  # the client sidecar finds no server: Envoy's 503
    run = ground.run("-k", "forced")
    failure = run.failure(FORCED)
    assert "workstation sidecars → oke Jaeger: the forced-traced request from workstation's client answered 503, " \
           "not 2xx: the mesh does not carry it" in failure
    assert run.properties(FORCED)["outcome"] == "failed"


def test_jaeger_down_is_named_by_every_check(ground):
    ground.jaeger.stop()
    ground.closed_port(ground.jaeger.ports["query_http"])  # and nothing else takes its port meanwhile
    run = ground.run(*FAULT_SCALE)
    assert "conformance → oke Jaeger: oke Jaeger still unreachable" in run.failure(JAEGER), run.output
    # The forced trace is read from Jaeger's query API: it stops at once, naming the Jaeger check's diagnosis.
    assert run.failure(FORCED).startswith("not run: needs conformance → oke Jaeger: oke Jaeger still unreachable"), \
        run.failure(FORCED)
    assert "(found by jaeger answers its query api)" in run.failure(FORCED)
    # Kiali reads the same Jaeger query service: it stops at once too, naming the Jaeger check (one diagnosis per hop).
    kiali = run.failure(KIALI)
    assert kiali.startswith("not run: needs conformance → oke Jaeger: oke Jaeger still unreachable"), kiali
    assert "(found by jaeger answers its query api)" in kiali
    assert run.properties(KIALI)["outcome"] == "blocked"


def test_kiali_reading_a_jaeger_that_is_not_there_is_named_from_its_503(ground):
    ground.kiali.tracing_url = ground.closed_port()  # the CR's internal_url at no Jaeger; the runner's Jaeger answers
    run = ground.run("-k", "kiali", *FAULT_SCALE)
    kiali = run.failure(KIALI)
    assert "oke Kiali → oke Jaeger: Kiali lists no trace of the request for sample/helloworld after" in kiali
    assert f"Kiali cannot read its tracing backend ({ground.kiali.tracing_url}): Get \"{ground.kiali.tracing_url}/api/traces?end=" in kiali
    assert "connect: connection refused" in kiali  # Go's dial error, as the real Kiali's 503 says (recorded)


def test_kiali_with_tracing_disabled_is_named_at_once(ground):
    ground.kiali.tracing_url = None  # the CR's external_services.tracing.enabled false (Kiali's default)
    run = ground.run("-k", "kiali")
    failure = run.failure(KIALI)
    assert "oke Kiali → oke Jaeger: Kiali's tracing integration is off (GET /api/tracing: enabled false)" in failure
    assert run.properties(KIALI)["outcome"] == "failed"


def test_every_check_passes_through_the_api_servers_service_proxy(ground):
    """Istio's addon Service tracing:80 (base path /jaeger) and Kiali's behind a Kubernetes API server's proxy."""
    from tests.fakes.kubeapi import FakeKubeAPI

    with FakeKubeAPI("oke") as api:
        api.add_stack_services(kiali=ground.kiali.url)
        # Istio 1.29.6 samples/addons/jaeger.yaml: Service tracing, port 80 named http-query -> 16686.
        api.add_service("istio-system", "tracing", f"http://127.0.0.1:{ground.jaeger.ports['query_http']}", port=80,
                        port_name="http-query")
        kubeconfig = api.write_kubeconfig(ground.folder / "kubeconfig")
        topo = ground.folder / "proxied.yaml"
        topo.write_text(yaml.safe_dump({"clusters": [
            {"name": "oke", "role": "primary", "provider": "existing", "context": "kind-oke", "kubeconfig": str(kubeconfig)},
            {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"helloworld": ground.client.url}},
        ], "parts": ["tracing"]}))
        run = run_suites(ground.folder, "--topology", str(topo), "-m", "tracing")
        proxied = {r.path.split("/proxy")[0] for r in api.requests if "/proxy/" in r.path}
    assert run.code == 0, run.output
    assert "/api/v1/namespaces/istio-system/services/http:tracing:80" in proxied
    assert "/api/v1/namespaces/monitoring/services/http:kiali:20001" in proxied
