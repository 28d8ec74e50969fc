"""A user's stack that tells clusters apart by `k8s_cluster`, not the bring-up's `cluster` (issue 18): the real
Prometheus pair carries it as its external label, kube-prometheus-stack's resources (release kps, found by discovery)
say so, and the metrics and platform checks read it from there: healthy passes, a remote resource without it fails
naming the hop and the label the primary's own resource names its cluster by."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.proving_ground import PrometheusPair
from tests.proving_kube import KPS_LABELS, OTHER_CHART, KubeStack, kps_prometheus_spec, stack_prometheus_pair, start_kube_stack
from tests.suite_runner import run_suites
from tests.test_suite_metrics import endpoints_topology

# One ground for the module: its tests stay on one worker (pytest-xdist --dist loadgroup), so it starts once.
pytestmark = pytest.mark.xdist_group("other-label")

LABEL = "k8s_cluster"
CR = "kps-kube-prometheus-stack-prometheus"
REMOTE_SERIES = "suites.test_metrics::test_remote_series_reach_the_primary[workstation]"
FRESH = "suites.test_metrics::test_remote_series_are_fresh[workstation]"
HOP = "workstation Prometheus → oke Prometheus (remote_write)"


@pytest.fixture(scope="module")
def ground(tmp_path_factory) -> Iterator[KubeStack]:
    """The stack under a user's names (tests/test_suite_discovery.py's), its Prometheus pair labelled k8s_cluster."""
    with stack_prometheus_pair(tmp_path_factory.mktemp("prometheus"), OTHER_CHART, label=LABEL) as pair:
        stack = start_kube_stack(tmp_path_factory.mktemp("ground"), pair, names="other")
        yield stack
        stack.stop()


def run(stack: KubeStack, *args: str):
    return run_suites(stack.folder, "--topology", str(stack.topology()), *args)


def test_the_metrics_and_platform_checks_pass_reading_the_users_label(ground: KubeStack) -> None:
    result = run(ground, "-m", "metrics or platform")
    assert result.code == 0, result.output
    where = f"Prometheus observability/{CR} spec.externalLabels.{LABEL}"
    assert result.properties(REMOTE_SERIES)["cluster_label"] == f"{LABEL}=workstation ({where})"
    assert result.properties(FRESH)["cluster_label"] == f"{LABEL}=workstation ({where})"


def test_a_remote_resource_without_the_label_fails_at_once_naming_the_hop_and_the_label(ground: KubeStack) -> None:
    remote: PrometheusPair = ground.pair
    api = ground.apis["workstation"]
    spec = kps_prometheus_spec("workstation", False, remote_write_url=f"http://{ground.prometheus_ips['oke']}:9090/api/v1/write",
                               label=LABEL)
    api.add_custom_object("monitoring.coreos.com", "v1", "prometheuses", "observability",
                          {"metadata": {"name": CR, "labels": KPS_LABELS}, "spec": {**spec, "externalLabels": {}}})
    try:
        result = run(ground, "-m", "metrics", "-k", "reach_the_primary")
    finally:
        api.add_custom_object("monitoring.coreos.com", "v1", "prometheuses", "observability",
                              {"metadata": {"name": CR, "labels": KPS_LABELS}, "spec": spec})
    assert remote.label == LABEL
    failure = result.failure(REMOTE_SERIES)
    assert failure.splitlines()[0].startswith(
        f"{HOP}: Prometheus observability/{CR} gives its series no external label with the value workstation "
        f"(external labels: prometheus=observability/{CR}, prometheus_replica=$(POD_NAME); "
        f"set spec.externalLabels.{LABEL}: workstation)"), failure
    assert (f"the one it names itself by: {LABEL} (Prometheus observability/{CR} spec.externalLabels.{LABEL})"
            in failure), failure


def test_on_endpoints_the_label_is_read_from_the_configuration_prometheus_loaded(ground: KubeStack, tmp_path) -> None:
    """No API server to read a resource from: the primary's global.external_labels name the label (the same pair)."""
    topology = endpoints_topology(tmp_path, ground.pair.primary.url, ground.pair.remote.url)
    result = run_suites(tmp_path, "--topology", str(topology), "-m", "metrics")
    assert result.code == 0, result.output
    assert result.properties(REMOTE_SERIES)["remote_intent"].startswith("not judged: ")
    assert result.properties(REMOTE_SERIES)["cluster_label"] == (
        f"{LABEL}=workstation (the label oke names itself by: the oke Prometheus global.external_labels.{LABEL} "
        "(/api/v1/status/config; the Prometheus resource of oke cannot be read: cluster oke has provider endpoints: "
        "no Kubernetes API access))")
