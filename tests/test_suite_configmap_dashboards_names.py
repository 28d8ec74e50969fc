"""The configmap-dashboards suite on a stack under a user's own names, with a topology that has no `services:` entry:
Grafana as its own release `grafana` in namespace `grafana`, its pod, sidecar and provider ConfigMap found from the
Service discovery found; a sidecar watching only its own namespace (the chart's default) is named by that namespace."""

from __future__ import annotations

import pytest

from tests.fakes.dashboard_sidecar import SidecarConfig
from tests.proving_configmap_dashboards import start_dashboards_ground
from tests.proving_ground import PrometheusPair
from tests.test_suite_configmap_dashboards import APPEARS, GONE, HOP, NAMESPACE, PANELS, leftovers, run


@pytest.mark.parametrize("config", [None, SidecarConfig(NAMESPACE="grafana")], ids=["healthy", "own-namespace-only"])
def test_configmap_dashboards_on_grafana_under_its_own_release(tmp_path, prometheus_pair: PrometheusPair,
                                                               config: SidecarConfig | None) -> None:
    with start_dashboards_ground(tmp_path / "ground", prometheus_pair, config=config, names="other") as ground:
        result = run(ground, *(("-k", "appears") if config else ()))
        left = leftovers(ground)
    assert "  oke grafana              grafana/grafana:80 [labels app.kubernetes.io/name=grafana]" in result.output
    assert left == []
    if config is None:
        assert result.code == 0, result.output
        for case in (APPEARS, PANELS, GONE):
            assert result.properties(case)["outcome"] == "passed", case
        return
    failure = result.failure(APPEARS)
    assert result.properties(APPEARS)["outcome"] == "failed", failure
    assert f"{HOP}: ConfigMap {NAMESPACE}/conformance-dashboard-" in failure
    assert (f"is never provisioned: the sidecar watches grafana (NAMESPACE), not {NAMESPACE}: set "
            "grafana.sidecar.dashboards.searchNamespace: ALL") in failure
