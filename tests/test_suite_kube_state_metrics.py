"""The kube-state-metrics suite against real control planes, a real kube-state-metrics v2.20.0 on each and the
real Prometheus pair: the healthy path, and each fault with the hop and the diagnosis it is named by."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from kubernetes import client as kclient

from tests import web
from tests.proving_ksm import ADDRESSES, KSM_POD, KsmGround, NotReadyKubelet, crash_looping, start_ksm_ground
from tests.real.ground import in_namespace
from tests.suite_runner import SuiteRun, run_suites, settle

# One ground for the module: its tests stay on one worker (pytest-xdist --dist loadgroup), so it starts once.
pytestmark = pytest.mark.xdist_group("ksm-ground")

SCRAPED = "suites.test_kube_state_metrics::test_kube_state_metrics_is_scraped[{}]"
DESCRIBED = "suites.test_kube_state_metrics::test_the_canary_pod_is_described_on_the_primary[{}]"
STATE_NS = "conformance-canary-state"  # stack/services.yaml canary.namespace + conformance/probes/kube_state_metrics/state_canary.py SUFFIX
REAL = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kube-state-metrics")


def ground_for(tmp_path: Path, **options) -> Iterator[KsmGround]:
    return in_namespace(lambda ns: start_ksm_ground(tmp_path / "ground", ns, **options), REAL, ADDRESSES.values())


@pytest.fixture(scope="module")
def ground(tmp_path_factory) -> Iterator[KsmGround]:
    """One ground for the module; a test that changes it puts it back."""
    yield from ground_for(tmp_path_factory.mktemp("ksm"))


def run(ground: KsmGround, *args: str, parts=("kube-state-metrics",), timeout: float = 300) -> SuiteRun:
    with ground.ns:  # the child pytest and its connections inside the ground's namespace
        return run_suites(ground.folder, "--topology", str(ground.topology(list(parts))), "-m", "kube_state_metrics",
                          *args, timeout=timeout)


def ksm_target_down(ground: KsmGround, cluster: str) -> bool:
    with ground.ns:
        targets = web.get(f"{ground.prometheus_url(cluster)}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    return any(t["labels"].get("job") == "kube-state-metrics" and t["health"] == "down" for t in targets)


def test_healthy_ground_passes_every_check_for_both_clusters(ground):
    result = run(ground, "-rs")
    assert result.code == 0, result.output
    for cluster in ("oke", "workstation"):
        assert result.properties(SCRAPED.format(cluster))["outcome"] == "passed"
        assert result.properties(SCRAPED.format(cluster))["ksm_targets"] == "1"
        described = result.properties(DESCRIBED.format(cluster))
        assert described["outcome"] == "passed", result.failure(DESCRIBED.format(cluster))
    # The remote's series come through remote_write with its external label; the primary's own carry none.
    assert result.properties(DESCRIBED.format("workstation"))["canary_cluster_label"] == "workstation"
    assert result.properties(DESCRIBED.format("oke"))["canary_cluster_label"] == "(none)"
    assert "the primary's own kube-state-metrics series carry no cluster label" in result.output
    assert "optional parts: kube-state-metrics" in result.output
    with ground.ns:  # the check deleted its namespace, and the real namespace controller finished the deletion
        for cluster in ground.planes:
            names = [n.metadata.name for n in kclient.CoreV1Api(ground.api(cluster)).list_namespace().items]
            assert STATE_NS not in names, names
    print({c: {k: v for k, v in result.properties(DESCRIBED.format(c)).items() if k.endswith("seconds")}
           for c in ground.planes}, f"suite {result.suite_seconds:.1f} s")


def test_a_stack_without_the_part_skips_every_check_with_the_reason(ground):
    result = run(ground, "-rs", parts=())
    assert result.code == 5, result.output  # nothing else was selected: no check ran (INCOMPLETE), none failed
    for case in (SCRAPED.format("oke"), DESCRIBED.format("workstation")):
        assert result.properties(case)["outcome"] == "not_applicable"
    assert "kube-state-metrics is not a part of this stack" in result.output


def test_a_stopped_kube_state_metrics_is_named_down_with_its_error(ground):
    ksm = ground.ksm["workstation"]
    ksm.stop()
    try:
        settle(lambda: ksm_target_down(ground, "workstation"), "the remote's ksm target is not down yet")
        result = run(ground, "-k", "workstation", "--timeout-scale", "0.1")
    finally:
        with ground.ns:
            ksm.start()
    failure = result.failure(SCRAPED.format("workstation"))
    assert "workstation kube-state-metrics → oke Prometheus: kube-state-metrics not scraped after" in failure
    assert f"1 of 1 kube-state-metrics targets of the workstation Prometheus down: http://{ksm.target}/metrics: down: " in failure
    assert "connection refused" in failure
    # The scrape check diagnosed the hop: the canary check needs it and stops at once, naming it.
    described = result.failure(DESCRIBED.format("workstation"))
    assert described.startswith("not run: needs workstation kube-state-metrics → oke Prometheus: kube-state-metrics "
                                "not scraped after"), described
    assert "(found by kube state metrics is scraped[workstation])" in described
    assert result.properties(DESCRIBED.format("workstation"))["outcome"] == "blocked"


def test_a_crash_looping_kube_state_metrics_is_named_at_once_with_its_back_off(ground):
    ksm = ground.ksm["workstation"]
    ksm.stop()
    try:
        with ground.ns:
            crash_looping(ground.api("workstation"))  # the kubelet's account of it: next start in 5 min
        settle(lambda: ksm_target_down(ground, "workstation"), "the remote's ksm target is not down yet")
        result = run(ground, "-k", "workstation")  # the real wait: the back-off outlasts it
    finally:
        with ground.ns:
            ksm.start()  # a fresh pod, as a rollout makes
    failure = result.failure(SCRAPED.format("workstation"))
    assert result.properties(SCRAPED.format("workstation"))["outcome"] == "failed", failure
    assert failure.startswith("workstation kube-state-metrics → oke Prometheus: kube-state-metrics not scraped: 1 of 1 "
                              "kube-state-metrics targets of the workstation Prometheus down: "), failure
    assert (f"pod monitoring/{KSM_POD} is in CrashLoopBackOff (6 restarts, last Error (code 1)): the kubelet starts it "
            "again only ") in failure
    assert "(back-off 5m0s), after this wait; its log says why it exits" in failure
    described = result.failure(DESCRIBED.format("workstation"))
    assert described.startswith("not run: needs workstation kube-state-metrics → oke Prometheus: kube-state-metrics "
                                "not scraped: "), described
    assert result.properties(DESCRIBED.format("workstation"))["outcome"] == "blocked"


def test_a_cluster_that_does_not_scrape_kube_state_metrics_is_named(tmp_path):
    for g in ground_for(tmp_path, scraped=("oke",)):
        result = run(g, "-k", "scraped and workstation", "--timeout-scale", "0.05")
        failure = result.failure(SCRAPED.format("workstation"))
        assert "workstation kube-state-metrics → oke Prometheus: kube-state-metrics not scraped after" in failure
        assert ("the workstation Prometheus has no kube-state-metrics target (scrape pool "
                "serviceMonitor/monitoring/kube-prometheus-stack-kube-state-metrics/0): is kube-state-metrics installed "
                "and its ServiceMonitor selected?") in failure


def test_kube_state_metrics_restricted_to_other_namespaces_is_named_at_once_from_its_pods_args(ground):
    ksm = ground.ksm["workstation"]
    with ground.ns:
        ksm.restart(namespaces="kube-system")
    try:
        result = run(ground, "-k", "described and workstation")  # the real wait: its args say it at the first look
    finally:
        with ground.ns:
            ksm.restart()
    failure = result.failure(DESCRIBED.format("workstation"))
    assert result.properties(DESCRIBED.format("workstation"))["outcome"] == "failed", failure
    assert failure.startswith("workstation kube-state-metrics → oke Prometheus: kube-state-metrics never describes the "
                              "canary pod conformance-canary-state/state-canary-"), failure
    assert (f": pod monitoring/{KSM_POD}: it watches --namespaces=kube-system only, not conformance-canary-state "
            "(kube-state-metrics.namespaces / releaseNamespace / namespacesDenylist") in failure


def test_kube_state_metrics_restricted_where_its_args_cannot_be_read_is_named_from_what_it_describes(ground):
    ksm = ground.ksm["workstation"]
    with ground.ns:
        ksm.restart(namespaces="kube-system")
        kclient.CoreV1Api(ground.api("workstation")).delete_namespaced_pod(KSM_POD, "monitoring", grace_period_seconds=0)
    try:
        result = run(ground, "-k", "described and workstation", "--timeout-scale", "0.2")
    finally:
        with ground.ns:
            ksm.restart()
    failure = result.failure(DESCRIBED.format("workstation"))
    assert "workstation kube-state-metrics → oke Prometheus: the canary pod conformance-canary-state/state-canary-" in failure
    assert ("exists in the API server, but kube-state-metrics does not describe it: it describes pods in namespaces "
            "kube-system only") in failure
    assert "(kube-state-metrics.namespaces / releaseNamespace / namespacesDenylist" in failure
    assert (f"; kube-state-metrics' arguments were not read (its target's pod monitoring/{KSM_POD} is not in the API server), so "
            "this waited") in failure
    assert result.properties(DESCRIBED.format("workstation"))["outcome"] == "timed_out"


def test_series_on_the_remote_but_not_on_the_primary_name_the_remote_write_hop(tmp_path):
    for g in ground_for(tmp_path):
        with g.ns:
            g.pair.remote.stop_remote_write()
        result = run(g, "-k", "described and workstation", "--timeout-scale", "0.2")
        failure = result.failure(DESCRIBED.format("workstation"))
        assert "workstation kube-state-metrics → oke Prometheus: the canary pod" in failure
        assert ("the workstation Prometheus has the canary's kube_pod_info but the primary has not: the remote_write "
                "hop loses it") in failure


def test_a_scrape_without_honor_labels_is_named(tmp_path):
    for g in ground_for(tmp_path, honor_labels=False):
        result = run(g, "-k", "described and workstation")
        # Every scrape renames the canary's labels alike: said once they are seen, not after the 90 s wait.
        failure = result.failure(DESCRIBED.format("workstation"))
        assert result.properties(DESCRIBED.format("workstation"))["outcome"] == "failed", failure
        assert ('workstation kube-state-metrics → oke Prometheus: the workstation Prometheus has the canary as kube_pod_info{exported_namespace="conformance-canary-state", '
                'exported_pod="state-canary-') in failure
        assert "its scrape does not honor labels, so the target's namespace and pod replaced kube-state-metrics' own " \
               "(honorLabels: true on the ServiceMonitor endpoint" in failure


def test_a_canary_that_is_not_ready_is_named_at_once_with_the_api_servers_condition(ground):
    with NotReadyKubelet(ground, "workstation") as kubelet:  # the canary is never Ready, not even for a moment
        result = run(ground, "-k", "described and workstation")  # the real wait: said once ksm reports it not Ready
    assert kubelet.probed == "False"  # the node's kubelet left its probe pod not Ready
    failure = result.failure(DESCRIBED.format("workstation"))
    assert result.properties(DESCRIBED.format("workstation"))["outcome"] == "precondition", failure
    assert failure.startswith("workstation kube-state-metrics → oke Prometheus: the canary pod is not Ready in the "
                              "workstation API server (Ready=False (ContainersNotReady: containers with unready status: "
                              "[canary])), and kube-state-metrics reports it as it is ("), failure
    assert "'false': 1.0" in failure  # what the real ksm exposes for a pod whose Ready condition is False
    assert "the pod, not the metrics, is at fault" in failure
