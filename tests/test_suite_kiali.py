"""The kiali suite against FakeKiali (Kiali 2.29 shapes): healthy, remote missing, inaccessible, home misnamed."""

from __future__ import annotations

import pytest

from tests.proving_stack import GRAFANA_PASSWORD, GRAFANA_PASSWORD_ENV, start_stack
from tests.suite_runner import run_suites

LISTED = "suites.test_kiali::test_kiali_lists_every_cluster_accessible_with_the_primary_as_home[{}]"
NAMESPACES = "suites.test_kiali::test_kiali_lists_namespaces_of_the_cluster[{}]"
WORKLOADS = "suites.test_kiali::test_kiali_lists_the_remote_workloads[workstation]"


@pytest.fixture
def stack(tmp_path, prometheus_pair):
    s = start_stack(tmp_path, prometheus_pair)
    yield s
    s.stop()


def run(stack, *args):
    return run_suites(stack.folder, "--topology", str(stack.topology()), "-m", "kiali", *args,
                      env={GRAFANA_PASSWORD_ENV: GRAFANA_PASSWORD})


def test_healthy_kiali_passes(stack):
    result = run(stack)
    assert result.code == 0, result.output
    assert result.properties(WORKLOADS)["kiali_remote_workloads"] == "2"
    assert result.properties(NAMESPACES.format("workstation"))["kiali_namespaces"] == "2"


def test_an_inaccessible_remote_fails_every_kiali_check_at_once(stack):
    stack.kiali.inaccessible.add("workstation")  # clustering.clusters without secret_name: accessible:false
    result = run(stack)
    for case in (LISTED.format("workstation"), NAMESPACES.format("workstation"), WORKLOADS):
        failure = result.failure(case)
        assert ("oke Kiali → workstation API server: Kiali lists workstation but cannot access it: "
                "Kiali has no kubeconfig for it (a clustering.clusters entry without secret_name") in failure
        assert "kiali.io/multiCluster=true" in failure  # how to fix it
        assert result.properties(case)["outcome"] == "failed"
    assert "failure" not in {c.tag for c in result.cases()[LISTED.format("oke")]}
    assert result.suite_seconds < 15  # no waiting on a state that cannot recover


def test_a_remote_kiali_does_not_know_is_named(stack):
    stack.kiali.hidden.add("workstation")  # no remote secret at all
    result = run(stack, "-k", "accessible")
    assert "Kiali does not list cluster workstation (it lists: oke)" in result.failure(LISTED.format("workstation"))


def test_a_home_cluster_kiali_names_otherwise_is_reported_with_the_cr_field(stack):
    stack.kiali.home_name = "Kubernetes"  # kubernetes_config.cluster_name unset and undetected (config/istio/util.go)
    result = run(stack, "-k", "accessible")
    failure = result.failure(LISTED.format("oke"))
    assert "Kiali does not list cluster oke (it lists: Kubernetes, workstation)" in failure
    assert "Kiali calls its home cluster Kubernetes: kubernetes_config.cluster_name in the Kiali CR must be oke" in failure
    assert "kiali.io/multiCluster" not in failure  # not a remote-secret problem
    assert "failure" not in {c.tag for c in result.cases()[LISTED.format("workstation")]}


def test_kiali_absent_from_the_topology_is_skipped_with_the_reason(stack):
    topo = stack.topology(name="no-kiali.yaml", drop={"oke": {"kiali"}})
    result = run_suites(stack.folder, "--topology", str(topo), "-m", "kiali", env={GRAFANA_PASSWORD_ENV: GRAFANA_PASSWORD})
    skipped = result.cases()[WORKLOADS].find("skipped")
    assert "oke Kiali: not in the topology (provider endpoints lists no services.kiali" in skipped.get("message")
