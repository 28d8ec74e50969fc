"""The suites with provider existing through REAL kube-apiservers: their service proxy, Secrets, pods, scale, logs."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from kubernetes import client as kclient

from conformance.core.manifests import APP, load, traffic_generator
from conformance.core.versions import load_versions
from conformance.probes.mesh.traffic import sample_crossing
from tests import web
from tests.proving_realkube import ADDRESSES, RealKubeGround, cri_line, start_realkube_ground, wait_for
from tests.proving_stack import GRAFANA_PASSWORD
from tests.real.ground import in_namespace
from tests.real.kube import LogRule, kubeconfig_entry, write_kubeconfig
from tests.suite_runner import SuiteRun, run_suites

CANARY = "suites.test_logs::test_log_canary_reaches_the_primary_loki[{}]"
LABELS = "suites.test_logs::test_loki_cluster_label_lists_every_cluster"
REMOTE_SERIES = "suites.test_metrics::test_remote_series_reach_the_primary[workstation]"
PODS = "suites.test_platform::test_every_stack_pod_is_ready[{}]"
TARGETS = "suites.test_platform::test_every_prometheus_target_is_up[{}]"
DRIFT = "suites.test_platform::test_the_stack_runs_the_pinned_versions[{}]"  # a `should`: the fakes are not the pins
CANARY_NS = "conformance-canary"  # stack/services.yaml canary.namespace
CROSS = "suites.test_mesh::test_mesh_requests_cross_from_the_remote_to_the_primary[workstation]"
ISTIOD = "suites.test_mesh::test_istiod_is_scraped_with_its_metrics"
AREAS = "(logs or metrics or platform or dashboards or kiali or mesh) and not upgrade"  # the default suite


@contextmanager
def ground_for(tmp_path: Path, **options) -> Iterator[RealKubeGround]:
    """The real-kube proving ground; skipped saying why when this machine cannot hold it (failed under CI=true)."""
    yield from in_namespace(lambda ns: start_realkube_ground(tmp_path / "ground", ns, **options),
                            ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"),
                            ADDRESSES.values())


# The tests on the shared healthy ground stay on one worker, so it starts once (two control planes: ~10 s, 40 s loaded).
SHARED_GROUND = pytest.mark.xdist_group("realkube-ground")


@pytest.fixture(scope="module")
def ground(tmp_path_factory) -> Iterator[RealKubeGround]:
    """One healthy ground for the checks that leave it as they found it."""
    with ground_for(tmp_path_factory.mktemp("realkube")) as g:
        yield g


# The tests that break a ground share one, each breaking a part the others do not look at: the crash loop and the
# revoked token on the remote, the Loki pod on the primary; the API servers go down last (file order, one worker).
BROKEN_GROUND = pytest.mark.xdist_group("realkube-broken")
CRASH_LOG = 'level=error msg="error creating promtail" error="yaml: unmarshal errors"'  # the crashed container's log
CRASH_POD = "loki-stack-promtail-crash"


@pytest.fixture(scope="module")
def breakable(tmp_path_factory) -> Iterator[RealKubeGround]:
    """One ground for the tests that break it; kwok serves CRASH_LOG as the remote's crash pod's previous log."""
    folder = tmp_path_factory.mktemp("realkube-breakable")
    previous = folder / "promtail-previous.log"
    previous.write_text(cri_line(CRASH_LOG))
    rule = LogRule("monitoring", folder / "promtail.log", pod=CRASH_POD, container="promtail", previous=previous)
    with ground_for(folder, log_rules={"workstation": [rule]}) as g:
        yield g


def run(ground: RealKubeGround, *args: str, timeout: float = 240, kubeconfig: Path | None = None) -> SuiteRun:
    with ground.ns:  # the child pytest, and every connection it makes, inside the proving ground's namespace
        return run_suites(ground.folder, "--topology", str(ground.topology(kubeconfig=kubeconfig)), *args, timeout=timeout)


def closing_block(result: SuiteRun) -> list[str]:
    """The lines of the run's closing block: the verdict, root causes, what was not observed."""
    block = result.output.split("conformance verdict", 1)[1].splitlines()[1:]
    return block[:next(i for i, line in enumerate(block) if line.startswith("reports: "))]


def outcome(result: SuiteRun, case: str) -> str:
    return result.properties(case)["outcome"]


def traffic_left_as_found(ground: RealKubeGround) -> None:
    """The mesh check scaled the real traffic generator back: 0 replicas, and its pods gone (bounded wait)."""
    app = traffic_generator()
    selector = ",".join(f"{k}={v}" for k, v in load(APP / "traffic.yaml")["spec"]["selector"]["matchLabels"].items())
    with ground.ns:
        apps = kclient.AppsV1Api(ground.api("workstation"))
        # The Deployment's own spec (the scale subresource omits a 0, as autoscaling/v1 Scale's omitempty does).
        assert apps.read_namespaced_deployment(app.name, app.namespace, _request_timeout=10).spec.replicas == 0
        core = kclient.CoreV1Api(ground.api("workstation"))
        deadline = time.monotonic() + 60  # the replica set controller deletes them, kwok finishes the deletion
        while core.list_namespaced_pod(app.namespace, label_selector=selector, _request_timeout=10).items:
            assert time.monotonic() < deadline, "traffic pods still there 60 s after the check scaled to 0"
            time.sleep(0.5)
    assert ground.sidecars.api.errors == []


def canary_namespace_gone(ground: RealKubeGround, cluster: str) -> bool:
    with ground.ns:
        try:
            kclient.CoreV1Api(ground.api(cluster)).read_namespace(CANARY_NS, _request_timeout=10)
        except kclient.ApiException as e:
            return e.status == 404
    return False


@SHARED_GROUND
def test_logs_metrics_and_platform_pass_through_the_real_service_proxy(ground: RealKubeGround) -> None:
    """Healthy: the canary pods run on kwok and are deleted with their namespace; series and pods check out."""
    result = run(ground, "-m", AREAS)
    assert result.code == 0, result.output
    outcomes = {case: outcome(result, case) for case in result.names()}
    print("\n".join(f"{o:10} {c}" for c, o in outcomes.items()))
    drift = {c: outcomes.pop(next(k for k in outcomes if k.endswith(f"the stack runs the pinned versions[{c}]")))
             for c in ground.planes}
    other_store = {c for c, o in outcomes.items() if o == "not_applicable" and "opensearch" in c}  # the other profile's
    assert other_store and {outcomes.pop(c) for c in other_store} == {"not_applicable"}
    assert set(outcomes.values()) == {"passed"}, outcomes  # nothing skipped: every check met the real servers
    # oke runs FakeGrafana, not the pinned Grafana; workstation's one service with a version is the real Prometheus,
    # built at the pin (its agent's metrics Service is not on this ground, so nothing else there is compared).
    assert drift == {"oke": "failed", "workstation": "passed"}, drift
    pin = load_versions().apps["grafana"]
    assert f"grafana: pinned {pin}, running {ground.grafana.version}" in result.failure(DRIFT.format("oke"))
    for cluster in ground.planes:
        assert outcome(result, CANARY.format(cluster)) == "passed"
        assert canary_namespace_gone(ground, cluster)  # the real namespace controller finished the deletion
    assert outcome(result, REMOTE_SERIES) == "passed"
    assert result.properties(CROSS)["cross_cluster_series"] == "2"  # both sidecars reported the crossing request
    assert result.properties(ISTIOD)["istiod_metrics_missing"] == "0"
    traffic_left_as_found(ground)
    assert result.properties(LABELS)["loki_cluster_values"] == "oke,workstation"
    assert not ground.agent.errors
    assert GRAFANA_PASSWORD not in result.output and GRAFANA_PASSWORD not in result.junit.read_text()


@SHARED_GROUND
def test_a_traffic_generator_whose_pods_never_run_times_out_and_is_scaled_back(ground: RealKubeGround) -> None:
    """The real remote scales the generator up but no node takes its pods (a nodeSelector none has): no client
    sidecar, so no source series; the check times out naming the request it waited for, then scales back to 0."""
    app = traffic_generator()

    def node_selector(selector: dict[str, str] | None) -> None:
        with ground.ns:
            kclient.AppsV1Api(ground.api("workstation")).patch_namespaced_deployment(
                app.name, app.namespace, {"spec": {"template": {"spec": {"nodeSelector": selector}}}})
    with ground.ns:  # a run before this one on the ground: its client's series go stale a few scrapes after it ends
        query = f'istio_requests_total{{{sample_crossing("workstation").selector(response_code=None)},reporter="source"}}'
        wait_for("the sample client's series of an earlier run stale on the primary", lambda: not web.get(
            f"{ground.pair.primary.url}/api/v1/query", params={"query": query}, timeout=10).json()["data"]["result"])
    node_selector({"conformance.test/no-such-node": "true"})
    try:
        result = run(ground, "-m", "mesh", "-k", "cross", "--timeout-scale", "0.1")
    finally:
        node_selector(None)
    failure = result.failure(CROSS)
    assert outcome(result, CROSS) == "timed_out", failure
    assert "workstation sample client → oke sample server (mesh)" in failure, failure
    assert "no istio_requests_total from workstation to oke" in failure, failure
    traffic_left_as_found(ground)


@BROKEN_GROUND
def test_crashlooping_remote_pod_fails_at_once_with_its_previous_log(breakable: RealKubeGround) -> None:
    """kwok plays CrashLoopBackOff and serves the crashed container's log as --previous: Failed at once, log shown."""
    with breakable.ns:
        core = kclient.CoreV1Api(breakable.api("workstation"))
        core.create_namespaced_pod("monitoring", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": CRASH_POD, "labels": {"conformance.test/crashloop": "true"}},
            "spec": {"containers": [{"name": "promtail", "image": "docker.io/grafana/promtail:3.5.1"}]}})
    try:
        result = run(breakable, "-k", "stack_pod and workstation")
    finally:
        with breakable.ns:
            core.delete_namespaced_pod(CRASH_POD, "monitoring", grace_period_seconds=0)
    failure = result.failure(PODS.format("workstation"))
    assert outcome(result, PODS.format("workstation")) == "failed", failure
    assert f"monitoring/{CRASH_POD} container promtail CrashLoopBackOff (5 restarts)" in failure
    assert "last 20 lines (previous container):" in failure
    assert 'error="yaml: unmarshal errors"' in failure


@BROKEN_GROUND
def test_loki_pod_gone_is_the_real_proxys_503_and_the_logs_checks_time_out(breakable: RealKubeGround) -> None:
    """Delete the Loki pod: the endpoints controller empties loki-stack's Endpoints; the real proxy answers 503."""
    ground = breakable
    with ground.ns:
        core = kclient.CoreV1Api(ground.api("oke"))
        core.delete_namespaced_pod("loki-stack-0", "monitoring", grace_period_seconds=0)
    result = run(ground, "-m", "logs", "-k", "canary and oke or cluster_label", "--timeout-scale", "0.05")
    failure = result.failure(CANARY.format("oke"))
    assert outcome(result, CANARY.format("oke")) == "timed_out", failure
    assert "answered 503" in failure, failure
    # ResourceLocation in pkg/registry/core/service/storage/storage.go at v1.35.0, word for word.
    assert 'no endpoints available for service "loki-stack"' in failure, failure  # the Status message, unquoted
    # The canary waited its budget for the oke hop: the label check, which needs every cluster's, does not wait again.
    assert outcome(result, LABELS) == "blocked", result.failure(LABELS)
    assert result.failure(LABELS).startswith("not run: needs oke Promtail → oke Loki: no canary line after")
    # The check deleted its namespace; at --timeout-scale 0.05 it waited 3 s for the controller, which may take longer.
    deadline = time.monotonic() + 60
    while not canary_namespace_gone(ground, "oke") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert canary_namespace_gone(ground, "oke")


@BROKEN_GROUND
def test_a_real_remote_token_revoked_under_kiali_fails_at_once_naming_the_remote_secret(breakable: RealKubeGround) -> None:
    """The recorded remote-token-revoked, on real API servers: the token Secret deleted on the remote, so the real
    remote API server answers Kiali's token 401; Kiali keeps the remote accessible, and the checks say so at once."""
    with breakable.ns:
        kclient.CoreV1Api(breakable.api("workstation")).delete_namespaced_secret("kiali-service-account-token", "monitoring")
        (client,) = breakable.kiali._clients.values()  # the client Kiali built from the mounted secret
        deadline = time.monotonic() + 60  # the API server's token cache: wait for the 401 itself, not for a time
        while client.read_error() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert client.read_error() == "Unauthorized"
    listed = "suites.test_kiali::test_kiali_lists_every_cluster_accessible_with_the_primary_as_home[workstation]"
    result = run(breakable, "-m", "kiali", "-k", "workstation")
    failure = result.failure(listed)
    assert ("oke Kiali → workstation API server: Kiali lists workstation but cannot read it (no namespace of it, no "
            "Kubernetes-workstation in /api/status)") in failure, failure
    assert "the credentials in remote secret kiali-remote-cluster-secret-workstation" in failure
    assert outcome(result, listed) == "failed"  # at once, not timed_out after the namespace wait
    secret = "suites.test_kiali::test_kiali_remote_secret_is_there_for_the_remote[workstation]"
    assert outcome(result, secret) == "passed"  # the secret itself is there and right: its token is what is refused


@BROKEN_GROUND
def test_both_api_servers_down_end_the_run_at_once_one_line_per_cluster(breakable: RealKubeGround) -> None:
    """`existing` clusters whose API servers are stopped: the look before the checks finds it, every check ends at
    once not observed, and the closing block has one line per cluster with its server and the cause."""
    for plane in breakable.planes.values():
        next(c for c in plane.components if c.name == "kube-apiserver").stop()
    result = run(breakable, "--read-only", timeout=120)
    assert result.code == 5, result.output
    assert result.suite_seconds < 30, result.output
    assert "Traceback" not in result.output and "urllib3" not in result.output, result.output
    block = closing_block(result)
    assert block[0].startswith("INCOMPLETE: no check ran · "), block
    causes = [line.strip() for line in block if line.startswith("  - ") and "API server" in line]
    assert len(causes) == 2, block  # one line per cluster (the checks that write have their own: --read-only)
    for name, plane in breakable.planes.items():
        wanted = f"- not run: needs {name} API server at {plane.server}: unreachable: connection refused ("
        assert sum(line.startswith(wanted) for line in causes) == 1, block
    for case in result.names():
        assert outcome(result, case) in ("skipped", "not_applicable"), (case, result.output)


@SHARED_GROUND
def test_remote_api_server_refusing_leaves_its_checks_unobserved_naming_the_real_status(
        ground: RealKubeGround, tmp_path: Path) -> None:
    """Real authentication (a certificate of another CA: 401) and real RBAC (a user bound to nothing: 403): the run's
    own access is refused, which says nothing of the stack, so the checks are not observed and the run INCOMPLETE."""
    oke, ws = ground.planes["oke"], ground.planes["workstation"]
    stranger = kubeconfig_entry("workstation", ws.server, ws.pki, "admin")
    stranger["users"] = kubeconfig_entry("workstation", ws.server, oke.pki, "admin")["users"]  # oke's CA signed it
    for fault, remote in (("stranger", stranger), ("rbac", kubeconfig_entry("workstation", ws.server, ws.pki, "nobody"))):
        kubeconfig = write_kubeconfig(tmp_path / f"kubeconfig-{fault}",
                                      [kubeconfig_entry("oke", oke.server, oke.pki, "admin"), remote])
        result = run(ground, "-m", "platform", "-k", "workstation", kubeconfig=kubeconfig)
        assert result.code == 5, result.output  # INCOMPLETE
        targets, pods = result.skip_reason(TARGETS.format("workstation")), result.skip_reason(PODS.format("workstation"))
        if fault == "stranger":  # looked at once, before any check: the proof names the server and the 401
            for reason in (targets, pods):
                assert reason.startswith(f"not run: needs workstation API server at {ws.server}: the credentials of "
                                         "the kubeconfig are refused (401 Unauthorized)"), reason
        else:  # the RBAC authorizer's own words at v1.35.0, which the fake kube-apiserver repeats
            assert targets == (f"not run: the credentials for workstation ({ws.server}) may not get services/proxy in "
                               "namespace monitoring"), targets
            assert ("the credentials may not get services/proxy in namespace monitoring, list pods in namespace monitoring, "
                    "create namespaces, delete namespaces") in result.run_properties()["access.workstation"]
            assert ('pods is forbidden: User "conformance-nobody" cannot list resource "pods" in API group "" in the '
                    'namespace "monitoring"') in pods, pods
        for case in (TARGETS.format("workstation"), PODS.format("workstation")):
            assert outcome(result, case) == "skipped", result.output
        assert "INCOMPLETE: " in result.output and "Traceback" not in result.output


@SHARED_GROUND
def test_a_kubeconfig_context_that_does_not_exist_is_one_line(ground: RealKubeGround, tmp_path: Path) -> None:
    """A misspelled context: named once, with the contexts the file has, before any check; no wait, no traceback."""
    oke, ws = ground.planes["oke"], ground.planes["workstation"]
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig-misspelled",
                                  [kubeconfig_entry("okee", oke.server, oke.pki, "admin"),
                                   kubeconfig_entry("workstation", ws.server, ws.pki, "admin")])
    result = run(ground, "-m", "logs or metrics or platform", "--read-only", kubeconfig=kubeconfig)
    assert result.code == 5, result.output
    assert result.suite_seconds < 30
    assert "Traceback" not in result.output
    block = closing_block(result)
    oke_lines = [line for line in block if "kind-oke" in line]
    assert len(oke_lines) == 1, block
    assert oke_lines[0].startswith("  - not run: needs oke API server: kubeconfig context 'kind-oke' not found in "), block
    assert result.skip_reason("suites.test_metrics::test_primary_prometheus_is_ready") == (
        f"not run: needs oke API server: kubeconfig context 'kind-oke' not found in {kubeconfig} "
        "(it has: kind-okee, kind-workstation)")