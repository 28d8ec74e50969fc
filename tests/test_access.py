"""The access layer: URL overrides win, otherwise the API server's service proxy with the kubeconfig's token."""

from __future__ import annotations

import re
import time

import pytest

from conformance.core.access import Access, NoKubeAccess, ServiceAbsent, read_permissions, write_permissions
from conformance.clients.grafana import GrafanaClient
from conformance.clients.kiali import KialiClient
from conformance.clients.loki import LokiClient, Stream
from conformance.clients.prometheus import PrometheusClient
from conformance.core.eventually import Wait, eventually
from conformance.core.http import USER_AGENT, APIError
from conformance.core.kube import KubeconfigProblem
from conformance.core.outcomes import PreconditionUnmet, TimedOut, Unobservable
from conformance.core.topology import load_topology
from tests.fakes.grafana import FakeGrafana
from tests.fakes.kiali import FakeKiali
from tests.fakes.kubeapi import FakeKubeAPI
from tests.fakes.loki import FakeLoki
from tests.proving_stack import kiali_spec
from tests.suite_runner import write_topology

GRAFANA_PASSWORD = "grafana-secret-pw-7d1e"


@pytest.fixture
def kube(prometheus_pair):
    """A fake oke API server whose stack Services proxy to real Prometheus and the fakes."""
    with FakeLoki() as loki, FakeKiali(kiali_spec()) as kiali, \
            FakeGrafana(admin_user="admin", admin_password=GRAFANA_PASSWORD) as grafana, FakeKubeAPI("oke") as api:
        api.add_stack_services(prometheus=prometheus_pair.primary.url, loki=loki.url, grafana=grafana.url, kiali=kiali.url)
        api.add_secret("monitoring", "kube-prometheus-stack-grafana", {"admin-user": "admin", "admin-password": GRAFANA_PASSWORD})
        api.backends = {"loki": loki, "grafana": grafana, "kiali": kiali}
        yield api


def access_for(tmp_path, api, **cluster):
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    topo = write_topology(tmp_path, [{"name": "oke", "role": "primary", "provider": "existing",
                                      "context": "kind-oke", "kubeconfig": str(kubeconfig), **cluster}])
    topology = load_topology(topo)
    return Access(topology), topology.primary


def test_prometheus_through_the_service_proxy(tmp_path, kube):
    access, oke = access_for(tmp_path, kube)
    endpoint = access.endpoint(oke, "prometheus")
    assert endpoint.via == "proxy"
    assert endpoint.http.base_url == f"{kube.url}/api/v1/namespaces/monitoring/services/http:kube-prometheus-stack-prometheus:9090/proxy"
    assert PrometheusClient(endpoint.http).buildinfo()["version"]
    proxied = [r for r in kube.requests if "/proxy/" in r.path]
    assert proxied and all(r.headers.get("Authorization") == f"Bearer {kube.token}" for r in proxied)


def test_loki_push_and_query_through_the_proxy(tmp_path, kube):
    import time

    access, oke = access_for(tmp_path, kube)
    loki = LokiClient(access.endpoint(oke, "loki").http)
    now = time.time_ns()
    loki.push([Stream({"cluster": "oke", "job": "t"}, [(now, "hello through the proxy")])])
    streams = eventually(lambda: loki.streams('{cluster="oke"}', start=now / 1e9 - 60, end=now / 1e9 + 60) or
                         (_ for _ in ()).throw(__import__("conformance.core.eventually").eventually.NotYet("none")),
                         hop="h", what="w", wait=Wait(timeout=5, delay=0.05))
    assert streams[0]["values"][0][1] == "hello through the proxy"


def test_kiali_web_root_through_the_proxy(tmp_path, kube):
    access, oke = access_for(tmp_path, kube)
    endpoint = access.endpoint(oke, "kiali")
    assert endpoint.http.base_url.endswith("/services/http:kiali:20001/proxy/kiali")
    assert set(KialiClient(endpoint.http).clusters()) == {"oke", "workstation"}


def test_grafana_logs_in_with_the_secret_because_the_proxy_strips_authorization(tmp_path, kube, capsys):
    access, oke = access_for(tmp_path, kube)
    grafana = GrafanaClient(access.endpoint(oke, "grafana"))
    assert isinstance(grafana.search("dash-db"), list)  # needs the session cookie from /login
    logins = [r for r in kube.backends["grafana"].requests if r.path == "/login"]
    assert len(logins) == 1
    assert GRAFANA_PASSWORD not in capsys.readouterr().out


def test_the_secret_value_is_masked_in_errors(tmp_path, kube):
    from conformance.core.redact import redact

    access, oke = access_for(tmp_path, kube)
    access.endpoint(oke, "grafana")
    assert GRAFANA_PASSWORD not in redact(f"login failed with {GRAFANA_PASSWORD}")


def test_a_url_override_wins_over_the_proxy(tmp_path, kube, prometheus_pair):
    access, oke = access_for(tmp_path, kube, services={"prometheus": prometheus_pair.remote.url})
    endpoint = access.endpoint(oke, "prometheus")
    assert endpoint.via == "url" and endpoint.http.base_url == prometheus_pair.remote.url
    before = len(kube.requests)
    PrometheusClient(endpoint.http).flags()
    assert len(kube.requests) == before  # nothing went through the API server


def test_a_wrong_token_is_a_precondition_at_once(tmp_path, kube):
    access, oke = access_for(tmp_path, kube)
    prometheus = PrometheusClient(access.endpoint(oke, "prometheus").http)
    kube.token = "rotated"  # the kubeconfig's token no longer works (docs/troubleshooting.md#token-rejected-401-unauthorized)
    with pytest.raises(PreconditionUnmet) as e:
        eventually(prometheus.flags, hop="conformance → oke Prometheus", what="no flags", wait=Wait(timeout=30))
    assert "answered 401: " in e.value.headline and "Unauthorized" in e.value.headline


def test_no_endpoints_is_transient_and_retried(tmp_path, kube):
    access, oke = access_for(tmp_path, kube)
    loki = LokiClient(access.endpoint(oke, "loki").http)
    kube.set_endpoints_ready("monitoring", "loki-stack", False)
    with pytest.raises(APIError) as e:
        loki.labels()
    assert e.value.status == 503 and e.value.transient
    assert 'no endpoints available for service \\"loki-stack\\"' in e.value.body or 'no endpoints available for service "loki-stack"' in e.value.body


def test_a_missing_context_is_a_precondition_naming_it(tmp_path, kube):
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    topo = load_topology(write_topology(tmp_path, [{"name": "oke", "role": "primary", "provider": "existing",
                                                    "context": "kind-nope", "kubeconfig": str(kubeconfig)}]))
    with pytest.raises(KubeconfigProblem, match=r"oke API server: kubeconfig context 'kind-nope' not found in .*kubeconfig "
                                                 r"\(it has: "):
        Access(topo).endpoint(topo.primary, "prometheus")


def test_absent_services_say_which_and_where(tmp_path):
    topo = load_topology(write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": "http://127.0.0.1:1"}},
        {"name": "workstation", "role": "remote", "provider": "kind"},
    ]))
    access = Access(topo)
    with pytest.raises(ServiceAbsent, match=r"oke Loki: not in the topology \(provider endpoints lists no services.loki; "
                                           r"declare it with absent: \[loki\]"):
        access.endpoint(topo.primary, "loki")
    with pytest.raises(ServiceAbsent, match="the stack runs no grafana on remote cluster workstation"):
        access.endpoint(topo.cluster("workstation"), "grafana")


# -- credentials that expire ------------------------------------------------------------------

PLUGIN = """\
import json, sys, datetime
token_file, runs_file, lifetime = sys.argv[1], sys.argv[2], float(sys.argv[3])
open(runs_file, "a").write("run\\n")
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=lifetime)
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": open(token_file).read().strip(),
                             "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}}))
"""


def exec_access(tmp_path, api, lifetime: float):
    """An Access whose kubeconfig gets its token from an exec plugin (as OKE's `oci ce cluster generate-token`)."""
    import sys

    import yaml

    plugin, token_file, runs = tmp_path / "plugin.py", tmp_path / "token", tmp_path / "runs"
    plugin.write_text(PLUGIN)
    token_file.write_text(api.token)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "oke",
        "clusters": [{"name": "oke", "cluster": {"server": api.url}}],
        "contexts": [{"name": "oke", "context": {"cluster": "oke", "user": "oke"}}],
        "users": [{"name": "oke", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable, "interactiveMode": "Never",
            "args": [str(plugin), str(token_file), str(runs), str(lifetime)]}}}],
    }))
    topo = load_topology(write_topology(tmp_path, [{"name": "oke", "role": "primary", "provider": "existing",
                                                    "context": "oke", "kubeconfig": str(kubeconfig)}]))
    return Access(topo), topo.primary, token_file, runs


def rotate(api, token_file) -> str:
    """The API server stops accepting the old token; the plugin now hands out the new one."""
    api.token = f"fresh-{api.token[-8:]}"
    token_file.write_text(api.token)
    return api.token


def test_an_exec_token_refused_with_401_is_refreshed_once_and_the_call_repeated(tmp_path, kube):
    access, oke, token_file, runs = exec_access(tmp_path, kube, lifetime=3600)  # far from expiry
    prometheus = PrometheusClient(access.endpoint(oke, "prometheus").http)
    core = access.kube(oke).core()
    prometheus.flags()
    prometheus.flags()
    assert runs.read_text().count("run") == 1  # one token for as long as the API server takes it
    fresh = rotate(kube, token_file)
    assert prometheus.flags()  # the service proxy: 401, plugin again, same request again
    assert access.kube(oke).call("list pods", core.list_namespaced_pod, "monitoring") is not None  # kubernetes client
    assert runs.read_text().count("run") == 2
    proxied = [r for r in kube.requests if "/proxy/" in r.path]
    assert proxied[-1].headers["Authorization"] == f"Bearer {fresh}"


def test_an_exec_token_near_its_expiry_is_renewed_before_it_is_sent(tmp_path, kube):
    # The kubernetes client renews a token that expires within 5 minutes (EXPIRY_SKEW_PREVENTION_DELAY).
    access, oke, token_file, runs = exec_access(tmp_path, kube, lifetime=60)
    prometheus = PrometheusClient(access.endpoint(oke, "prometheus").http)
    prometheus.flags()
    fresh = rotate(kube, token_file)
    sent = len(kube.requests)
    prometheus.flags()
    after = kube.requests[sent:]
    assert [r.headers["Authorization"] for r in after] == [f"Bearer {fresh}"]  # no 401 first: renewed on expiry


def test_grafana_asking_for_a_token_rotation_gets_one_new_login(tmp_path, kube):
    grafana_fake = kube.backends["grafana"]
    grafana_fake.rotate_after = 2  # Grafana 13 rotates a session token every 10 minutes by default
    access, oke = access_for(tmp_path, kube)
    grafana = GrafanaClient(access.endpoint(oke, "grafana"))
    for _ in range(5):
        assert isinstance(grafana.folders(), list)
    logins = [r for r in grafana_fake.requests if r.path == "/login"]
    assert len(logins) == 3  # requests 1-2, 3-4, then 5 on a third session


def test_grafana_still_asking_after_a_new_login_is_an_error_not_a_loop(tmp_path, kube):
    grafana_fake = kube.backends["grafana"]
    grafana_fake.rotate_after = 0  # every session is stale at once
    access, oke = access_for(tmp_path, kube)
    with pytest.raises(APIError) as e:
        GrafanaClient(access.endpoint(oke, "grafana")).folders()
    assert e.value.status == 401 and "session.token.rotate" in e.value.body
    assert len([r for r in grafana_fake.requests if r.path == "/login"]) == 2


# -- one error family: the Kubernetes client's errors as the HTTP layer's ------------------------------------------


def flaky(*errors: BaseException, then: object = "answer"):
    """A client method that raises the errors in turn, then answers."""
    left = list(errors)

    def call(*args, **kwargs):
        if left:
            raise left.pop(0)
        return then
    return call


def test_a_503_from_the_api_server_is_retried_outside_a_wait_and_waited_out_inside_one(tmp_path, kube):
    from kubernetes.client.exceptions import ApiException
    access, oke = access_for(tmp_path, kube)
    api = access.kube(oke)
    busy = lambda: ApiException(status=503, reason="Service Unavailable")  # noqa: E731
    assert api.call("list pods", flaky(busy(), busy())) == "answer"  # the HTTP layer's bounded retries
    pods = flaky(busy(), busy(), busy(), busy(), busy())
    assert eventually(lambda: api.call("list pods", pods), hop="h", what="w",
                      wait=Wait(timeout=20, delay=0.01, max_delay=0.05)) == "answer"  # NotYet inside a wait


def test_an_unreachable_api_server_is_waited_out_and_named_with_its_cause(tmp_path, kube):
    import urllib3
    access, oke = access_for(tmp_path, kube)
    api = access.kube(oke)
    refused = urllib3.exceptions.MaxRetryError(None, "/api/v1/pods", urllib3.exceptions.NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused"))
    refused.reason.__cause__ = ConnectionRefusedError(111, "Connection refused")
    with pytest.raises(TimedOut) as e:
        eventually(lambda: api.call("list pods", flaky(*[refused] * 100)), hop="h", what="no pods",
                   wait=Wait(timeout=0.5, delay=0.01, max_delay=0.05))
    assert re.fullmatch(r"conformance → oke API server: oke API server still unreachable when the wait ended after "
                        r"\d+ s: connection refused", e.value.headline), e.value.headline
    assert kube.url in e.value.evidence


@pytest.mark.parametrize("status,outcome,words", [
    (404, PreconditionUnmet, "conformance → oke API server: read Secret monitoring/x: 404 Not Found: secrets \"x\" not found"),
    (403, Unobservable, "not run: oke API server read Secret monitoring/x: 403 Forbidden: secrets \"x\" is forbidden"),
    (401, Unobservable, "not run: oke API server read Secret monitoring/x: 401 Unauthorized: Unauthorized"),
])
def test_final_api_server_answers_end_a_wait_at_once_with_the_servers_message(tmp_path, kube, status, outcome, words):
    access, oke = access_for(tmp_path, kube)
    api = access.kube(oke)
    if status == 403:
        kube.deny("secrets")
    if status == 401:
        kube.token = "rotated"
    attempts: list[int] = []
    with pytest.raises(outcome) as e:
        eventually(lambda: attempts.append(1) or api.secret_value("monitoring", "x", "k"), hop="h", what="w",
                   wait=Wait(timeout=30))
    assert len(attempts) == 1  # at once: the wait made no second attempt (a loaded machine took 5.2 s for the first)
    assert words in str(e.value), str(e.value)


def test_the_access_proof_names_what_the_credentials_may_not_do(tmp_path, kube):
    access, oke = access_for(tmp_path, kube)
    kube.deny("services/proxy", "get", "monitoring")
    proof = access.kube(oke).prove(read_permissions() + write_permissions())
    assert proof.ok and proof.server == kube.url
    assert proof.denied == ("get services/proxy in namespace monitoring",)
    with_proof = Access(access.topology, {"oke": proof})
    with pytest.raises(NoKubeAccess, match=rf"not run: the credentials for oke \({re.escape(kube.url)}\) may not get "
                                           r"services/proxy in namespace monitoring"):
        with_proof.endpoint(oke, "prometheus")
    assert [r for r in kube.writes() if r.user_agent == USER_AGENT] == []  # reviews store nothing


def test_the_access_proof_of_a_server_that_is_down_ends_every_check_that_needs_it(tmp_path):
    with FakeKubeAPI("oke") as kube:
        access, oke = access_for(tmp_path, kube)
        url = kube.url
    started = time.monotonic()
    proof = access.kube(oke).prove(read_permissions())
    assert time.monotonic() - started < 5
    assert proof.problem == "unreachable: connection refused"
    with pytest.raises(NoKubeAccess, match=rf"^not run: needs oke API server at {re.escape(url)}: unreachable: "
                                           "connection refused$"):
        Access(access.topology, {"oke": proof}).endpoint(oke, "loki")


def test_the_reads_are_proven_where_the_services_were_found(tmp_path):
    """kube-prometheus-stack as release kps in observability, credentials bound there only: the first look's guess
    (the bring-up's namespace monitoring) gives way to observability, where the checks read; a refusal there is named."""
    from tests.test_discovery import kps_prometheus
    with FakeKubeAPI("oke") as api:
        kps_prometheus(api)
        api.deny("services/proxy", "get", "monitoring")
        api.deny("pods", "list", "monitoring")
        access, oke = access_for(tmp_path, api)
        first = access.kube(oke).prove(read_permissions())
        assert first.denied == ("get services/proxy in namespace monitoring", "list pods in namespace monitoring")
        located = Access(access.topology, {"oke": first}).located(oke, "prometheus")
        assert located.spec.namespace == "observability"
        judged = Access(access.topology, {"oke": first}, {("oke", "prometheus"): located})
        proof = judged.prove_where_found(oke, first)
        assert proof.ok and proof.denied == ()
        assert Access(access.topology, {"oke": proof}, dict(judged.found)).located(oke, "prometheus") == located
        api.deny("services/proxy", "get", "observability")
        refused = judged.prove_where_found(oke, first)
        assert refused.denied == ("get services/proxy in namespace observability",)
        with pytest.raises(NoKubeAccess, match=rf"^not run: the credentials for oke \({re.escape(api.url)}\) may not get "
                                               r"services/proxy in namespace observability$"):
            Access(access.topology, {"oke": refused}, dict(judged.found)).endpoint(oke, "prometheus")
