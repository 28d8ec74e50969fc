"""The suites through the API servers' service proxy (provider existing): healthy, and each broken hop."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Iterator

import pytest

from tests.fakes.kubeapi import FakeKubeAPI
from tests.fakes.loki import snappy_decode
from tests.fakes.server import Request
from tests.proving_ground import PrometheusPair
from tests.fakes.kiali import free_port
from tests.proving_kube import KIALI_NS, KubeStack, remote_secret_kubeconfig, stack_prometheus_pair, start_kube_stack
from tests.proving_stack import GRAFANA_PASSWORD, declared_dashboards
from tests.suite_runner import SuiteRun, run_suites

# One ground for the module: its tests stay on one worker (pytest-xdist --dist loadgroup), so it starts once.
pytestmark = pytest.mark.xdist_group("kube-stack")

EVERY_AREA = "logs or metrics or platform or kiali or dashboards"
CANARY = "suites.test_logs::test_log_canary_reaches_the_primary_loki[{}]"
LABELS = "suites.test_logs::test_loki_cluster_label_lists_every_cluster"
PODS = "suites.test_platform::test_every_stack_pod_is_ready[{}]"
TARGETS = "suites.test_platform::test_every_prometheus_target_is_up[{}]"
GRAFANA_LOG = "suites.test_dashboards::test_grafana_log_shows_no_provisioning_errors"
KIALI_LISTS = "suites.test_kiali::test_kiali_lists_every_cluster_accessible_with_the_primary_as_home[workstation]"
KIALI_WORKLOADS = "suites.test_kiali::test_kiali_lists_the_remote_workloads[workstation]"
KIALI_NAMESPACES = "suites.test_kiali::test_kiali_lists_namespaces_of_the_cluster[workstation]"
KIALI_SECRET = "suites.test_kiali::test_kiali_remote_secret_is_there_for_the_remote[workstation]"
CANARY_NS = "conformance-canary"  # stack/services.yaml canary.namespace


@pytest.fixture(scope="module")
def stack_pair(tmp_path_factory) -> Iterator[PrometheusPair]:
    """A Prometheus pair with the stack's scrape jobs, so the targets check sees what it would on the real stack."""
    with stack_prometheus_pair(tmp_path_factory.mktemp("stack-prometheus")) as pair:
        yield pair


@pytest.fixture
def stack(tmp_path: Path, stack_pair: PrometheusPair) -> Iterator[KubeStack]:
    s = start_kube_stack(tmp_path / "stack", stack_pair)
    yield s
    s.stop()


def run(stack: KubeStack, *args: str) -> SuiteRun:
    return run_suites(stack.folder, "--topology", str(stack.topology()), *args)


def outcome(result: SuiteRun, case: str) -> str:
    return result.properties(case)["outcome"]


def canary_cleaned_up(api: FakeKubeAPI) -> bool:
    """The canary namespace and pod were created, the namespace deleted, and it is gone."""
    writes = [(w.method, w.path) for w in api.writes()]
    return (("POST", "/api/v1/namespaces") in writes and ("POST", f"/api/v1/namespaces/{CANARY_NS}/pods") in writes
            and ("DELETE", f"/api/v1/namespaces/{CANARY_NS}") in writes
            and api.get_object("namespaces", "", CANARY_NS) is None)


# -- healthy ------------------------------------------------------------------------------------


def test_every_area_passes_through_the_proxy_and_leaves_nothing_behind(stack: KubeStack) -> None:
    """Healthy stack: all checks pass through the proxy; canary recorded and cleaned up; no secret leaks."""
    result = run(stack, "-m", EVERY_AREA)
    assert result.code == 0, result.output
    for cluster, api in stack.apis.items():
        seconds = float(result.properties(CANARY.format(cluster))["log_propagation_seconds"])
        assert 0 <= seconds < 3  # the agent ships within 0.2 s of the pod start; polls are at most 1 s apart
        assert canary_cleaned_up(api)
    assert result.properties(LABELS)["loki_cluster_values"] == "oke,workstation"
    assert result.properties(PODS.format("workstation"))["pods_ready"] == "3"  # STACK_PODS: no istiod, no gateway there
    assert not stack.hook_errors()
    for secret in [GRAFANA_PASSWORD] + [api.token for api in stack.apis.values()]:
        assert secret not in result.output and secret not in result.junit.read_text()


# -- log canary -----------------------------------------------------------------------------------


def test_canary_under_the_wrong_label_fails_at_once_and_still_deletes_its_namespace(
        tmp_path: Path, prometheus_pair: PrometheusPair) -> None:
    """A remote agent labelling cluster=oke: Failed naming the labels; the canary namespace is gone anyway."""
    stack = start_kube_stack(tmp_path / "stack", prometheus_pair, promtail_labels={"workstation": {"cluster": "oke"}})
    try:
        result = run(stack, "-k", "canary and workstation")
    finally:
        stack.stop()
    failure = result.failure(CANARY.format("workstation"))
    assert "remote workstation Promtail → oke Loki: the canary line arrived with cluster=oke, not cluster=workstation" in failure
    assert f"'namespace': '{CANARY_NS}'" in failure  # the stray line was found by its pod's namespace
    assert outcome(result, CANARY.format("workstation")) == "failed"
    assert canary_cleaned_up(stack.apis["workstation"])


def test_loki_without_endpoints_times_out_with_the_proxy_503(stack: KubeStack) -> None:
    """No ready Loki pod: the proxy's 503 is transient, so the logs checks wait and time out with it."""
    stack.apis["oke"].set_endpoints_ready("monitoring", "loki-stack", False)
    result = run(stack, "-m", "logs", "-k", "canary and oke or cluster_label", "--timeout-scale", "0.02")
    failure = result.failure(CANARY.format("oke"))
    assert outcome(result, CANARY.format("oke")) == "timed_out", failure
    # 60 s x 0.02, but one probe lasts about 1.4 s: the client retries each 503 three times first.
    assert re.search(r"no canary line after [12] s", failure)
    assert 'last observed' in failure and 'answered 503' in failure
    assert 'no endpoints available for service "loki-stack"' in failure  # the Status message, unquoted
    # One diagnosis per hop: the label check needs the oke hop the canary waited out, and stops at once naming it.
    assert outcome(result, LABELS) == "blocked", result.failure(LABELS)
    assert result.failure(LABELS).startswith("not run: needs oke Promtail → oke Loki: no canary line after")
    # The canary's own cleanup is not stopped by the hop its check found broken: deleted, waited out, no error.
    assert "cleanup failed" not in result.output, result.output
    assert canary_cleaned_up(stack.apis["oke"])


# -- platform -------------------------------------------------------------------------------------


def test_crashlooping_remote_pod_fails_at_once_with_its_previous_log(stack: KubeStack) -> None:
    """CrashLoopBackOff cannot clear by waiting: Failed well before the 180 s timeout, with the crash's log."""
    stack.apis["workstation"].add_pod(
        "monitoring", "loki-stack-promtail-crash", containers=[{"name": "promtail", "image": "grafana/promtail:2.9.3"}],
        crashloop=True, previous_logs='level=error msg="error creating promtail" error="yaml: unmarshal errors"\n')
    result = run(stack, "-k", "stack_pod and workstation")
    failure = result.failure(PODS.format("workstation"))
    assert "workstation stack pods: monitoring/loki-stack-promtail-crash container promtail CrashLoopBackOff (5 restarts)" in failure
    assert "last 20 lines (previous container):" in failure
    assert 'error="yaml: unmarshal errors"' in failure
    assert outcome(result, PODS.format("workstation")) == "failed"
    assert result.suite_seconds < 15


def crash_looping_promtail(api: FakeKubeAPI) -> str:
    name = "loki-stack-promtail-race"
    api.add_pod("monitoring", name, containers=[{"name": "promtail", "image": "grafana/promtail:2.9.3"}],
                crashloop=True, restart_count=1,
                previous_logs='level=error msg="error sending batch" error="connection refused"\n')
    return name


def test_a_single_crash_loop_that_heals_passes(stack: KubeStack) -> None:
    """Promtail crashed once while Loki started, then stays up: not a failure."""
    api = stack.apis["workstation"]
    name = crash_looping_promtail(api)
    threading.Timer(1.5, api.heal_pod, ("monitoring", name)).start()
    result = run(stack, "-k", "stack_pod and workstation")
    assert result.code == 0, result.output
    assert result.properties(PODS.format("workstation"))["pods_ready"] == "4"


def test_a_crash_loop_whose_restarts_grow_fails_with_the_previous_log(stack: KubeStack) -> None:
    api = stack.apis["workstation"]
    name = crash_looping_promtail(api)
    stop = threading.Event()

    def keep_crashing() -> None:  # from the check's first look at the pods, a restart every half second
        while not stop.wait(0.1) and not any(r.path == "/api/v1/namespaces/monitoring/pods" for r in api.requests):
            pass
        while not stop.wait(0.5):
            api.crash_again("monitoring", name)
    threading.Thread(target=keep_crashing, daemon=True).start()
    try:
        result = run(stack, "-k", "stack_pod and workstation")
    finally:
        stop.set()
    failure = result.failure(PODS.format("workstation"))
    assert f"monitoring/{name} container promtail CrashLoopBackOff (" in failure
    assert re.search(r"\[restarted \d+ more times during the wait\]", failure), failure
    assert "last 20 lines (previous container):" in failure and 'error="connection refused"' in failure
    assert outcome(result, PODS.format("workstation")) == "failed"  # at once: failed, not timed_out


def test_a_crash_loop_still_looping_as_the_wait_ends_fails_not_times_out(stack: KubeStack) -> None:
    name = crash_looping_promtail(stack.apis["workstation"])
    result = run(stack, "-k", "stack_pod and workstation", "--timeout-scale", "0.02")
    failure = result.failure(PODS.format("workstation"))
    assert f"monitoring/{name} container promtail CrashLoopBackOff (1 restarts)" in failure
    assert "[still crash-looping as the wait ends]" in failure
    assert 'error="connection refused"' in failure
    assert outcome(result, PODS.format("workstation")) == "failed"


def test_pod_that_never_gets_ready_times_out_naming_it(stack: KubeStack) -> None:
    """A running pod whose readiness probe keeps failing: the wait times out with that pod as last state."""
    stack.apis["oke"].add_pod("istio-system", "istiod-7b9c8d6f5-stuck", containers=[{"name": "discovery", "image": "istio/pilot:1.24.0"}],
                              ready=False)
    result = run(stack, "-k", "stack_pod and oke", "--timeout-scale", "0.02")
    failure = result.failure(PODS.format("oke"))
    assert "oke stack pods: pods not Ready after 4 s" in failure  # 180 s scaled by 0.02 is 3.6 s
    assert "istio-system/istiod-7b9c8d6f5-stuck container discovery NotReady: running but its readiness probe fails" in failure
    assert outcome(result, PODS.format("oke")) == "timed_out"


@pytest.mark.parametrize("fault, status", [
    ("token", "401"),  # the kubeconfig's token was rotated on the server
    ("rbac", "403"),   # the token's subject may not use the service proxy nor list pods
])
def test_remote_api_server_refusing_leaves_its_checks_unobserved_named_at_once(
        stack: KubeStack, fault: str, status: str) -> None:
    """401/403 from the remote API server: the run's own access is refused, which says nothing of the stack; its checks
    end at once not observed, naming the status (the look before the checks, or the API server's own message)."""
    remote = stack.apis["workstation"]
    if fault == "token":
        remote.token = "rotated-" + remote.token
    else:
        remote.deny("services/proxy")
        remote.deny("pods", "list")
    result = run(stack, "-m", "platform", "-k", "workstation")
    assert result.code == 5, result.output
    targets, pods = result.skip_reason(TARGETS.format("workstation")), result.skip_reason(PODS.format("workstation"))
    if fault == "token":
        for reason in (targets, pods):
            assert reason == (f"not run: needs workstation API server at {remote.url}: the credentials of the kubeconfig "
                              "are refused (401 Unauthorized)"), reason
    else:  # the SelfSubjectAccessReview before the checks, then the API server's own Status message
        assert targets == f"not run: the credentials for workstation ({remote.url}) may not get services/proxy in namespace monitoring"
        assert pods.startswith("not run: workstation API server list pods in monitoring: 403 Forbidden: pods is forbidden: "
                               f'User "{remote.user}" cannot list resource "pods" in API group "" in the namespace "monitoring"'), pods
    for case in (TARGETS.format("workstation"), PODS.format("workstation")):
        assert outcome(result, case) == "skipped"
    assert result.suite_seconds < 15


# -- dashboards -----------------------------------------------------------------------------------


def test_provisioning_error_in_the_grafana_pod_log_is_named(tmp_path: Path, prometheus_pair: PrometheusPair) -> None:
    """A dashboard file Grafana rejects: its error line is read from the Grafana pod's container log."""
    broken = {"uid": "uid-broken", "title": "", "folder": "Mesh", "file": "broken.json", "panels": []}
    stack = start_kube_stack(tmp_path / "stack", prometheus_pair, dashboards=declared_dashboards() + [broken])
    try:
        result = run(stack, "-k", "provisioning_errors")
    finally:
        stack.stop()
    failure = result.failure(GRAFANA_LOG)
    assert "oke Grafana provisioning: 1 provisioning errors in Grafana's log, first: Dashboard title cannot be empty" in failure
    assert "file=/var/lib/grafana/dashboards/default/broken.json" in failure
    assert outcome(result, GRAFANA_LOG) == "failed"
    assert result.properties(GRAFANA_LOG)["grafana_provisioning_errors"] == "1"


def test_a_missing_dashboard_is_named_at_once_from_the_grafana_pod_log(tmp_path: Path, prometheus_pair: PrometheusPair) -> None:
    """The pod's log shows a completed provisioning pass without the dashboard: no 90 s wait, the file is named."""
    specs = [s for s in declared_dashboards() if s["file"] != "istio-mesh.json"]
    stack = start_kube_stack(tmp_path / "stack", prometheus_pair, dashboards=specs)
    try:
        result = run(stack, "-k", "provisioned_in")
    finally:
        stack.stop()
    failure = result.failure("suites.test_dashboards::test_every_expected_dashboard_is_provisioned_in_its_folder")
    assert "oke Grafana provisioning: dashboard istio-mesh (file /var/lib/grafana/dashboards/istio/istio-mesh.json) " \
        "is missing: Grafana's provisioning pass completed without it" in failure, failure


# -- kiali ----------------------------------------------------------------------------------------


def test_remote_inaccessible_in_kiali_fails_at_once_naming_it(stack: KubeStack) -> None:
    """Kiali lists the remote but cannot reach it: every kiali check of the remote fails at once."""
    stack.kiali.inaccessible.add("workstation")
    result = run(stack, "-m", "kiali", "-k", "workstation")
    for case in (KIALI_LISTS, KIALI_WORKLOADS):
        failure = result.failure(case)
        assert "oke Kiali → workstation API server: Kiali lists workstation but cannot access it" in failure
        assert outcome(result, case) == "failed"
    assert result.suite_seconds < 15


def test_remote_hidden_from_kiali_says_it_is_not_listed(stack: KubeStack) -> None:
    """No remote secret at all: Kiali's config does not list the remote."""
    stack.kiali.hidden.add("workstation")
    result = run(stack, "-m", "kiali", "-k", "workstation")
    failure = result.failure(KIALI_LISTS)
    assert "oke Kiali → workstation API server: Kiali does not list cluster workstation (it lists: oke)" in failure
    assert "kiali.io/multiCluster=true" in failure  # the hint that says how Kiali finds a remote
    assert outcome(result, KIALI_LISTS) == "failed"


REMOTE_SECRET = "kiali-remote-cluster-secret-workstation"


def test_kiali_passes_with_its_remote_secret_read_directly(stack: KubeStack) -> None:
    """Healthy: every kiali check passes, the remote secret among them (found by its label, not its name)."""
    result = run(stack, "-m", "kiali")
    assert result.code == 0, result.output
    assert result.properties(KIALI_SECRET)["kiali_remote_secret"] == f"{KIALI_NS}/{REMOTE_SECRET}"


def test_a_remote_token_revoked_while_kiali_runs_fails_at_once_naming_the_secrets_credentials(stack: KubeStack) -> None:
    """Recorded remote-token-revoked: Kiali keeps the remote accessible, but reads nothing of it."""
    stack.apis["workstation"].tokens.clear()  # the remote's token Secret deleted: its API server answers 401
    result = run(stack, "-m", "kiali", "-k", "workstation")
    failure = result.failure(KIALI_LISTS)
    assert ("oke Kiali → workstation API server: Kiali lists workstation but cannot read it (no namespace of it, "
            "no Kubernetes-workstation in /api/status)") in failure
    assert f"refuses or does not answer the credentials in remote secret {REMOTE_SECRET}" in failure
    assert "Error fetching Namespaces for cluster [workstation]: Unauthorized" in failure  # Kiali's own log
    assert outcome(result, KIALI_LISTS) == "failed"  # at once: not timed_out after the 60 s wait
    for case in (KIALI_NAMESPACES, KIALI_WORKLOADS):
        assert outcome(result, case) in ("failed", "blocked"), result.output
        assert "cannot read it" in result.failure(case)


def restart_with_remote_secret(stack: KubeStack, server: str, token: str) -> None:
    """The remote secret rewritten, then the operator's rollout: Kiali starts again and reads it."""
    stack.apis["oke"].add_secret(KIALI_NS, REMOTE_SECRET, {"workstation": remote_secret_kubeconfig(server, token)},
                                 labels={"kiali.io/multiCluster": "true"}, annotations={"kiali.io/cluster": "workstation"})
    stack.kiali.restart()
    assert stack.kiali.exited  # the recorded FTL: nothing listens, the pod crash-loops


def test_a_bad_remote_token_at_start_is_diagnosed_from_kialis_pod(stack: KubeStack) -> None:
    """Recorded remote-token-invalid-at-start: Kiali exits; its pod and last log line name the remote secret."""
    server = f"https://{stack.apis['workstation'].host_ip}:6443"
    restart_with_remote_secret(stack, server, "a-token-workstation-never-issued")
    result = run(stack, "-m", "kiali")
    failure = result.failure(KIALI_LISTS)
    assert "oke Kiali → workstation API server: Kiali does not start (monitoring/kiali-" in failure
    assert (" CrashLoopBackOff, 3 restarts): a remote API server refuses the token in remote secret "
            f"{KIALI_NS}/{REMOTE_SECRET}") in failure
    assert "container kiali CrashLoopBackOff (3 restarts)" in failure  # the pod's state, in the evidence
    assert ("last log line: " in failure and "FTL failed to determine if *v1.Pod is namespaced: failed to get restmapping: "
            "failed to get server groups: the server has asked for the client to provide credentials") in failure
    assert outcome(result, KIALI_LISTS) == "failed"
    assert outcome(result, KIALI_WORKLOADS) in ("failed", "blocked")


def test_an_unreachable_remote_at_start_is_diagnosed_naming_the_secrets_server(stack: KubeStack) -> None:
    """Recorded remote-unreachable-at-start: the secret's server refuses connections; Kiali exits."""
    server = f"https://{stack.apis['workstation'].host_ip}:6443"
    stack.kiali.hosts[f"{stack.apis['workstation'].host_ip}:6443"] = f"http://127.0.0.1:{free_port()}"
    restart_with_remote_secret(stack, server, "kiali-service-account-token-workstation")
    result = run(stack, "-m", "kiali", "-k", "workstation")
    failure = result.failure(KIALI_LISTS)
    assert "oke Kiali → workstation API server: Kiali does not start (monitoring/kiali-" in failure
    assert f"Kiali cannot reach the server of remote secret {KIALI_NS}/{REMOTE_SECRET} ({server}) at start" in failure
    assert f'Get "{server}/api": dial tcp ' in failure and "connect: connection refused" in failure


def test_a_remote_secret_deleted_while_kiali_runs_is_reported(stack: KubeStack) -> None:
    """Recorded remote-secret-deleted-kiali-running: Kiali serves on; the secret check says it will not for long."""
    stack.apis["oke"].remove_secret(KIALI_NS, REMOTE_SECRET)
    result = run(stack, "-m", "kiali", "-k", "workstation")
    failure = result.failure(KIALI_SECRET)
    assert (f"oke Kiali → workstation API server: Kiali still serves workstation from remote secret {KIALI_NS}/"
            f"{REMOTE_SECRET}, which is gone") in failure
    assert "the operator drops workstation at Kiali's next restart" in failure
    assert outcome(result, KIALI_SECRET) == "failed"
    assert outcome(result, KIALI_WORKLOADS) == "passed"  # what Kiali serves still works
    stack.kiali.restart()  # recorded remote-secret-absent: the next start has no remote
    result = run(stack, "-m", "kiali", "-k", "workstation")
    assert "Kiali does not list cluster workstation (it lists: oke)" in result.failure(KIALI_LISTS)
    assert f"no remote secret for workstation: no Secret labelled kiali.io/multiCluster=true in {KIALI_NS}" in result.failure(KIALI_SECRET)


def test_a_remote_secret_on_a_loopback_server_is_named(stack: KubeStack) -> None:
    """The secret's kubeconfig points at 127.0.0.1 (kind's local kubeconfig): Kiali's pod would dial itself."""
    stack.apis["oke"].add_secret(KIALI_NS, REMOTE_SECRET, {"workstation": remote_secret_kubeconfig(
        "https://127.0.0.1:40123", "kiali-service-account-token-workstation")}, labels={"kiali.io/multiCluster": "true"})
    result = run(stack, "-m", "kiali", "-k", "secret")
    assert (f"remote secret {KIALI_NS}/{REMOTE_SECRET} for workstation: its server is a loopback address"
            in result.failure(KIALI_SECRET))


# -- read-only ------------------------------------------------------------------------------------


def allowed_write(fake: str, request: Request) -> bool:
    """The writes a --read-only run may cause.

    Grafana's session login: basic auth cannot pass the API server's proxy (it drops Authorization),
    so the suite logs in once; it changes nothing Grafana serves. Loki pushes from the log agent:
    the system itself, not the suite (the test also checks no canary line is among them).
    """
    grafana_login = "/api/v1/namespaces/monitoring/services/http:kube-prometheus-stack-grafana:80/proxy/login"
    if (fake, request.method, request.path) in {("grafana", "POST", "/login"), ("kube-oke", "POST", grafana_login)}:
        return True
    return fake == "loki" and request.path == "/loki/api/v1/push" and request.headers.get("User-Agent") == "promtail/2.9.3"


def test_read_only_sends_no_write_to_any_fake_and_creates_no_canary(stack: KubeStack) -> None:
    """--read-only: no writing request reaches any fake, apart from the Grafana login; no canary pod."""
    result = run(stack, "-m", EVERY_AREA, "--read-only")
    assert result.code == 5, result.output  # INCOMPLETE: the checks that write were not run
    writes = stack.writes()
    unexpected = {name: [(w.method, w.path) for w in ws if not allowed_write(name, w)] for name, ws in writes.items()}
    assert unexpected == {name: [] for name in writes}
    assert [(w.method, w.path) for w in writes["grafana"]] == [("POST", "/login")]  # one session for the whole run
    assert not any(CANARY_NS.encode() in snappy_decode(w.body) for w in writes["loki"])  # pushes are snappy protobuf
    for cluster in stack.apis:
        skipped = result.cases()[CANARY.format(cluster)].find("skipped")
        assert "--read-only: this check writes" in skipped.get("message")
