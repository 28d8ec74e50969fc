"""The kiali suite against FakeKiali (Kiali 2.29 shapes): healthy, remote missing, inaccessible, home misnamed."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.fakes.kubeapi import FakeKubeAPI
from tests.proving_kube import remote_secret_kubeconfig
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
    failure = result.failure(LISTED.format("workstation"))
    assert f"Kiali does not list cluster workstation (it lists: oke), read from {stack.kiali.url}" in failure
    assert "/api/config" in failure.split("read from", 1)[1].splitlines()[0]


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


@pytest.fixture
def remote_api(stack) -> Iterator[FakeKubeAPI]:
    """The remote's API server behind Kiali's remote secret (mounted as the operator does), Kiali restarted on it."""
    with FakeKubeAPI("workstation") as api:
        api.tokens["kiali-sa"] = "system:serviceaccount:monitoring:kiali-service-account"
        secrets = {"kiali-remote-cluster-secret-workstation": {"workstation": remote_secret_kubeconfig(api.url, "kiali-sa")}}
        stack.kiali.mounts = lambda: secrets
        stack.kiali.restart()
        yield api


def test_a_revoked_remote_token_fails_at_once_without_kubernetes_access(stack, remote_api):
    """Recorded remote-token-revoked, provider endpoints: Kiali's own answers are enough to say it at once."""
    remote_api.tokens.clear()  # the remote API server now answers Kiali 401
    result = run(stack, "-k", "workstation")
    failure = result.failure(LISTED.format("workstation"))
    assert ("oke Kiali → workstation API server: Kiali lists workstation but cannot read it (no namespace of it, no "
            f"Kubernetes-workstation in /api/status): {remote_api.url} refuses or does not answer the credentials in "
            "remote secret kiali-remote-cluster-secret-workstation") in failure
    assert result.properties(LISTED.format("workstation"))["outcome"] == "failed"
    assert result.properties(WORKLOADS)["outcome"] in ("failed", "blocked")


def test_a_kiali_that_exits_at_start_is_unreachable_without_kubernetes_access(stack, remote_api):
    """Recorded remote-token-invalid-at-start, provider endpoints: nothing to read the pod with, so the checks
    cannot observe their hop; they say Kiali refuses connections, as on the real Kiali."""
    remote_api.tokens.clear()
    stack.kiali.restart()
    assert stack.kiali.exited
    result = run(stack, "-k", "accessible")
    failure = result.failure(LISTED.format("oke"))
    assert f"conformance → oke Kiali: unreachable at {stack.kiali.url}/kiali/api/config: connection refused" in failure
    assert result.properties(LISTED.format("oke"))["outcome"] == "precondition"
