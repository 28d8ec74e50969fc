"""The suite on a stack installed under a user's own names, through the API servers' service proxies, with a topology
that has no `services:` entry: every service is discovered, the inventory names each, and the checks pass."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.proving_ground import PrometheusPair
from tests.proving_kube import OTHER_CHART, KubeStack, stack_prometheus_pair, start_kube_stack
from tests.suite_runner import run_suites
from tests.test_suite_kube import EVERY_AREA


# One worker: the module shares one Prometheus pair with the stack's scrape jobs.
pytestmark = pytest.mark.xdist_group("discovery-pair")


@pytest.fixture(scope="module")
def stack_pair(tmp_path_factory) -> Iterator[PrometheusPair]:
    """A Prometheus pair with the stack's scrape jobs (as tests/test_suite_kube.py's), the chart's named after kps."""
    with stack_prometheus_pair(tmp_path_factory.mktemp("stack-prometheus"), OTHER_CHART) as pair:
        yield pair


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory, stack_pair: PrometheusPair):
    s = start_kube_stack(tmp_path_factory.mktemp("elsewhere"), stack_pair, names="other")
    yield s
    s.stop()


INVENTORY = [  # what the console shows first: where each service was found (and by which rule), its version
    "  oke prometheus           observability/prometheus-operated:9090 [Prometheus observability/"
    "kps-kube-prometheus-stack-prometheus]  3.14.0",
    "  oke loki                 logging/loki:3100 [labels app.kubernetes.io/name=loki,"
    "app.kubernetes.io/component=single-binary]  2.9.3",
    "  oke grafana              grafana/grafana:80 [labels app.kubernetes.io/name=grafana]  11.4.0",
    "  oke kiali                istio-system/kiali:20001 [labels app.kubernetes.io/name=kiali]  v2.29.0",
    "  workstation prometheus   observability/prometheus-operated:9090 [Prometheus observability/"
    "kps-kube-prometheus-stack-prometheus]  3.14.0",
]


def test_every_area_passes_on_a_stack_under_other_names(elsewhere: KubeStack) -> None:
    topology = yaml.safe_load(elsewhere.topology().read_text())
    assert all("services" not in c for c in topology["clusters"])
    result = run_suites(elsewhere.folder, "--topology", str(elsewhere.topology()), "-m", EVERY_AREA)
    assert result.code == 0, result.output
    header = result.output.split("collected", 1)[0]
    for line in INVENTORY:
        assert line in header
    assert header.index("stack inventory") < header.index("topology:")  # the first thing the console shows
    assert "oke promtail             logging/promtail-metrics:3101 [labels app.kubernetes.io/name=promtail]" in header
    for cluster in ("oke", "workstation"):  # the monitors the user's Prometheus selects, not the bring-up's list
        targets = result.properties(f"suites.test_platform::test_every_prometheus_target_is_up[{cluster}]")
        assert targets["required_jobs_from"].startswith("the "), targets
        assert "bring-up" not in targets["required_jobs_from"].split("(")[0], targets
    junit = result.junit.read_text()
    assert 'name="inventory.oke.grafana" value="grafana/grafana:80 [labels app.kubernetes.io/name=grafana]  11.4.0"' in junit
    assert 'name="drift.oke.grafana" value="pinned 13.2.0, running 11.4.0"' in junit
    summary = (Path(result.junit).parent / "summary.md").read_text()
    assert "- **oke**: prometheus observability/prometheus-operated:9090 3.14.0 · loki logging/loki:3100 2.9.3" in summary


def test_two_prometheus_resources_leave_its_checks_not_observed_in_one_line(tmp_path, stack_pair) -> None:
    """A second Prometheus resource on the remote: its Prometheus checks are not observed, with the one-line message."""
    s = start_kube_stack(tmp_path / "stack", stack_pair, names="other")
    try:
        s.apis["workstation"].add_prometheus("team-a", "team-prometheus")
        result = run_suites(s.folder, "--topology", str(s.topology()), "-m", "metrics")
    finally:
        s.stop()
    expected = ("workstation Prometheus: 2 candidates in any namespace: observability/prometheus-operated:9090 "
                "(Prometheus observability/kps-kube-prometheus-stack-prometheus), team-a/prometheus-operated:9090 "
                "(Prometheus team-a/team-prometheus); pick one with services.prometheus.namespace of cluster "
                "workstation in topology")
    assert f"  workstation prometheus   NOT FOUND: {expected}" in result.output
    assert result.code != 0
    sender = result.properties("suites.test_metrics::test_remote_write_sender_is_healthy[workstation]")
    assert sender["outcome"] == "skipped"  # not observed: the run is INCOMPLETE, not FAIL
