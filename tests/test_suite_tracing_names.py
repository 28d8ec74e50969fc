"""The tracing suite on a stack under a user's own names, through an API server's service proxy with a topology that
has no `services:` entry for the primary: Jaeger (Istio's addon applied in `observability`) and Kiali (the operator's,
in `istio-system`) found by their labels; with no Jaeger Service at all, the checks say what was looked for."""

from __future__ import annotations


import yaml

from tests.fakes.kubeapi import FakeKubeAPI
from tests.suite_runner import SuiteRun, run_suites
from tests.test_suite_tracing import FORCED, JAEGER, KIALI, TracingGround, ground  # noqa: F401 (the fixture)


def run_through(api: FakeKubeAPI, ground: TracingGround, name: str) -> SuiteRun:
    kubeconfig = api.write_kubeconfig(ground.folder / f"kubeconfig-{name}")
    topo = ground.folder / f"{name}.yaml"
    topo.write_text(yaml.safe_dump({"clusters": [
        {"name": "oke", "role": "primary", "provider": "existing", "context": "kind-oke", "kubeconfig": str(kubeconfig)},
        {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"helloworld": ground.client.url}},
    ], "parts": ["tracing"]}))
    return run_suites(ground.folder, "--topology", str(topo), "-m", "tracing")


def users_stack(api: FakeKubeAPI, ground: TracingGround, jaeger: bool) -> None:
    """kiali-operator v2.29.0's Service in istio-system (templates/kubernetes/service.yaml: app.kubernetes.io/name
    kiali, port http); Istio 1.29.6 samples/addons/jaeger.yaml applied in observability: Service tracing, app=jaeger,
    port http-query 80 -> 16686 (and zipkin, labelled name: zipkin, which is not a candidate)."""
    api.add_service("istio-system", "kiali", ports=[{"name": "http", "port": 20001, "backend": ground.kiali.url}],
                    labels={"app": "kiali", "app.kubernetes.io/name": "kiali", "app.kubernetes.io/instance": "kiali"})
    if jaeger:
        api.add_service("observability", "tracing", f"http://127.0.0.1:{ground.jaeger.ports['query_http']}", port=80,
                        port_name="http-query", labels={"app": "jaeger"})
        api.add_service("observability", "zipkin", port=9411, port_name="http-query", labels={"name": "zipkin"})


def test_tracing_finds_jaeger_and_kiali_under_other_names_or_says_what_it_looked_for(ground: TracingGround) -> None:
    with FakeKubeAPI("oke") as api:
        users_stack(api, ground, jaeger=True)
        found = run_through(api, ground, "found")
        proxied = {r.path.split("/proxy")[0] for r in api.requests if "/proxy/" in r.path}
    assert found.code == 0, found.output
    assert "/api/v1/namespaces/observability/services/http:tracing:80" in proxied
    assert "/api/v1/namespaces/istio-system/services/http:kiali:20001" in proxied
    assert "  oke jaeger               observability/tracing:80 [labels app=jaeger]" in found.output
    with FakeKubeAPI("oke") as api:
        users_stack(api, ground, jaeger=False)
        absent = run_through(api, ground, "absent")
    looked = ("oke Jaeger: not found: no Service istio-system/tracing (the bring-up's name) and no Services labelled "
              "app=jaeger with a port http-query (Istio's jaeger addon), nor app.kubernetes.io/name=jaeger,"
              "app.kubernetes.io/component=all-in-one with a port http-query (jaeger chart) in any namespace; name it "
              "in topology")
    assert looked in absent.output, absent.output
    assert absent.code == 5, absent.output  # INCOMPLETE: the Jaeger hops could not be observed, none passed
    for case in (JAEGER, FORCED):
        assert absent.properties(case)["outcome"] not in ("passed", "failed"), case
