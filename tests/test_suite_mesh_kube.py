"""The cross-cluster mesh check through the API servers: it starts the traffic generator and puts it back."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from conformance.manifests import ENVOY_POOL, ISTIOD_POOL, traffic_generator
from tests.fakes.envoy import FakeEnvoy, FakeIstiod, request_series
from tests.proving_ground import start_pair
from tests.proving_kube import start_kube_stack
from tests.proving_stack import GRAFANA_PASSWORD, GRAFANA_PASSWORD_ENV
from tests.suite_runner import run_suites
from tests.test_suite_mesh import job

CROSS = "suites.test_mesh::test_mesh_requests_cross_from_the_remote_to_the_primary[workstation]"
APP = traffic_generator()


@pytest.fixture
def mesh(tmp_path):
    """A kube stack whose sidecars report the crossing request only once the remote's traffic Deployment runs."""
    with ExitStack() as stack:
        flowing = {"replicas": lambda: False}
        remote_envoy = stack.enter_context(FakeEnvoy([request_series("source", "workstation", "oke")],
                                                     traffic_flowing=lambda: flowing["replicas"]()))
        primary_envoy = stack.enter_context(FakeEnvoy([request_series("destination", "workstation", "oke")],
                                                      traffic_flowing=lambda: flowing["replicas"]()))
        istiod = stack.enter_context(FakeIstiod())
        pair = start_pair(tmp_path / "prom",
                          primary_scrape_jobs=job(ENVOY_POOL, primary_envoy.url, "/stats/prometheus") + job(ISTIOD_POOL, istiod.url, "/metrics"),
                          remote_scrape_jobs=job(ENVOY_POOL, remote_envoy.url, "/stats/prometheus"))
        stack.callback(pair.stop)
        kube = start_kube_stack(tmp_path / "kube", pair)
        stack.callback(kube.stop)
        workstation = kube.apis["workstation"]
        flowing["replicas"] = lambda: (workstation.deployment_replicas(APP.namespace, APP.name) or 0) > 0
        yield kube


def scale_patches(api) -> list:
    return [r for r in api.requests if r.method == "PATCH" and r.path.endswith(f"/deployments/{APP.name}/scale")]


def test_the_check_starts_traffic_then_restores_the_generator(mesh):
    workstation = mesh.apis["workstation"]
    workstation.add_deployment(APP.namespace, APP.name, replicas=0)
    result = run_suites(mesh.folder, "--topology", str(mesh.topology()), "-m", "mesh", "-k", "cross",
                        env={GRAFANA_PASSWORD_ENV: GRAFANA_PASSWORD})
    assert result.code == 0, result.output
    assert result.properties(CROSS)["cross_cluster_series"] == "2"
    assert len(scale_patches(workstation)) == 2  # up, then back
    assert workstation.deployment_replicas(APP.namespace, APP.name) == 0  # left as it was found


def test_no_sample_app_is_skipped_with_the_reason(mesh):
    result = run_suites(mesh.folder, "--topology", str(mesh.topology()), "-m", "mesh", "-k", "cross",
                        env={GRAFANA_PASSWORD_ENV: GRAFANA_PASSWORD})
    skipped = result.cases()[CROSS].find("skipped")
    assert "the sample mesh app is not deployed (deployment sample/traffic not found on workstation)" in skipped.get("message")


def test_read_only_never_scales_the_generator(mesh):
    workstation = mesh.apis["workstation"]
    workstation.add_deployment(APP.namespace, APP.name, replicas=0)
    result = run_suites(mesh.folder, "--topology", str(mesh.topology()), "-m", "mesh", "-k", "cross", "--read-only",
                        env={GRAFANA_PASSWORD_ENV: GRAFANA_PASSWORD})
    assert "--read-only" in result.cases()[CROSS].find("skipped").get("message")
    assert scale_patches(workstation) == []
