"""The mesh checks through the API servers, on a proving ground shaped like the real stack.

Envoys exist only where the bring-up runs injected pods: helloworld's on the primary, and on the remote
the permanent sleep pod's plus the traffic generator's once the mesh check scales it up (it stays at 0
replicas otherwise). The remote runs no gateway and no helloworld (Istio's remote profile).
"""

from __future__ import annotations

from contextlib import ExitStack


import pytest

from conformance.core.manifests import ENVOY_POOL, ISTIOD_POOL, traffic_generator
from tests import web
from tests.fakes.envoy import FakeEnvoy, FakeIstiod, request_series
from tests.proving_ground import start_pair
from tests.proving_kube import SERVER, SLEEP, EnvoyTargets, start_kube_stack
from tests.proving_stack import GRAFANA_PASSWORD, GRAFANA_PASSWORD_ENV
from tests.suite_runner import run_suites, settle
from tests.test_mesh_monitors import ISTIO_ENVOY_POOL, ISTIO_ISTIOD_POOL, istio_sample_monitors
from tests.test_suite_mesh import job

CROSS = "suites.test_mesh::test_mesh_requests_cross_from_the_remote_to_the_primary[workstation]"
SCRAPED = "suites.test_mesh::test_envoy_sidecars_are_scraped[workstation]"
ON_PRIMARY = "suites.test_mesh::test_envoy_series_are_queryable_on_the_primary[workstation]"
ISTIOD = "suites.test_mesh::test_istiod_is_scraped_with_its_metrics"
APP = traffic_generator()
ENV = {GRAFANA_PASSWORD_ENV: GRAFANA_PASSWORD}


@pytest.fixture
def mesh_of(tmp_path):
    """mesh_of(sample_app=True): a kube stack whose Prometheus pair scrapes the sidecars of running injected pods.
    names="other": the stack under a user's names (tests/proving_kube.py install_elsewhere) with Istio's sample
    monitors in istio-system labelled release=`monitor_release` (kps: the one its Prometheus selects)."""
    with ExitStack() as stack:
        def start(sample_app: bool = True, names: str = "bring-up", monitor_release: str | None = "kps",
                  envoy_job: tuple[str, str] | None = None):
            envoy_pool, istiod_pool = (ENVOY_POOL, ISTIOD_POOL) if names == "bring-up" else (ISTIO_ENVOY_POOL, ISTIO_ISTIOD_POOL)
            envoy_pool, envoy_path = envoy_job or (envoy_pool, "/stats/prometheus")  # a job of the user's own
            flowing = {"now": lambda: False}
            client = stack.enter_context(FakeEnvoy([request_series("source", "workstation", "oke")]))
            sleep = stack.enter_context(FakeEnvoy())
            server = stack.enter_context(FakeEnvoy([request_series("destination", "workstation", "oke")],
                                                   traffic_flowing=lambda: flowing["now"]()))
            istiod = stack.enter_context(FakeIstiod())
            # Discovery files exist before Prometheus starts; the kube stack fills them once its API servers run.
            remote_sd, primary_sd = tmp_path / "remote-envoys.json", tmp_path / "primary-envoys.json"
            for f in (remote_sd, primary_sd):
                f.write_text('[{"targets": [], "labels": {}}]')
            sd = lambda f: {"job_name": envoy_pool, "metrics_path": envoy_path,  # noqa: E731
                            "file_sd_configs": [{"files": [str(f)], "refresh_interval": "1s"}]}
            pair = start_pair(tmp_path / "prom", primary_scrape_jobs=[sd(primary_sd)] + job(istiod_pool, istiod.url, "/metrics"),
                              remote_scrape_jobs=[sd(remote_sd)])
            stack.callback(pair.stop)
            kube = start_kube_stack(tmp_path / "kube", pair, sample_app=sample_app, names=names)
            stack.callback(kube.stop)
            if names == "other" and monitor_release:  # None: no mesh monitor on the clusters
                for api in kube.apis.values():
                    istio_sample_monitors(api, release=monitor_release)
            workstation, oke = kube.apis["workstation"], kube.apis["oke"]
            flowing["now"] = lambda: (workstation.deployment_replicas(APP.namespace, APP.name) or 0) > 0
            for targets in (EnvoyTargets(workstation, remote_sd, {SLEEP: sleep.url, APP: client.url}),
                            EnvoyTargets(oke, primary_sd, {SERVER: server.url})):
                stack.callback(targets.stop)
            return kube
        yield start


def scale_patches(api) -> list:
    return [r for r in api.requests if r.method == "PATCH" and r.path.endswith(f"/deployments/{APP.name}/scale")]


def run(kube, *args):
    return run_suites(kube.folder, "--topology", str(kube.topology()), "-m", "mesh", *args, env=ENV)


def test_the_remotes_envoy_checks_pass_on_the_sleep_pods_sidecar(mesh_of):
    """The generator is stopped, yet the remote has an Envoy: the bring-up's sleep pod."""
    kube = mesh_of()
    result = run(kube, "-k", "workstation and (sidecars_are_scraped or queryable)")
    assert result.code == 0, result.output
    assert result.properties(SCRAPED)["envoy_targets"] == "1"  # sleep only: traffic has 0 replicas
    assert kube.apis["workstation"].deployment_replicas(APP.namespace, APP.name) == 0


def test_no_injected_pod_on_the_remote_says_so_at_once(mesh_of):
    """Nothing injected runs on the remote: both Envoy checks say that, not that the monitor is unselected."""
    result = run(mesh_of(sample_app=False), "-k", "workstation and (sidecars_are_scraped or queryable)")
    for case in (SCRAPED, ON_PRIMARY):
        failure = result.failure(case)
        assert "no injected pod runs on workstation" in failure
        assert "no pod there has an istio-proxy container" in failure
        assert "is not selected by the Prometheus" not in failure
        assert result.properties(case)["outcome"] == "failed"
    assert result.seconds < 30  # at once, not after the 90 s wait


def test_the_check_starts_traffic_then_restores_the_generator(mesh_of):
    kube = mesh_of()
    workstation = kube.apis["workstation"]
    result = run(kube, "-k", "cross")
    assert result.code == 0, result.output
    assert result.properties(CROSS)["cross_cluster_series"] == "2"
    assert len(scale_patches(workstation)) == 2  # up, then back
    assert workstation.deployment_replicas(APP.namespace, APP.name) == 0  # left as it was found


def test_no_sample_app_is_skipped_with_the_reason(mesh_of):
    result = run(mesh_of(sample_app=False), "-k", "cross")
    skipped = result.cases()[CROSS].find("skipped")
    assert "the sample mesh app is not deployed (deployment sample/traffic not found on workstation)" in skipped.get("message")


def test_read_only_never_scales_the_generator(mesh_of):
    kube = mesh_of()
    result = run(kube, "-k", "cross", "--read-only")
    assert "--read-only" in result.cases()[CROSS].find("skipped").get("message")
    assert scale_patches(kube.apis["workstation"]) == []


OTHER_CR = "Prometheus observability/kps-kube-prometheus-stack-prometheus"


def test_the_mesh_passes_on_a_stack_under_other_names_through_istios_sample_monitors(mesh_of):
    """No monitor in `monitoring`: the checks find Istio's sample monitors in istio-system and wait on their pools."""
    result = run(mesh_of(names="other"))
    assert result.code == 0, result.output
    assert result.properties(SCRAPED)["monitor"] == "PodMonitor istio-system/envoy-stats-monitor (monitoring=istio-proxies)"
    assert result.properties(SCRAPED)["monitor_selection"] == (
        f"PodMonitor istio-system/envoy-stats-monitor is selected by {OTHER_CR} (podMonitorSelector: release=kps)")
    assert result.properties(ISTIOD)["monitor"] == (
        "ServiceMonitor istio-system/istio-component-monitor (monitoring=istio-components)")
    assert result.properties(CROSS)["cross_cluster_series"] == "2"


def test_istios_sample_monitors_as_shipped_are_named_unselected_with_the_label_wanted(mesh_of):
    """Istio's sample carries release: istio; the user's kps Prometheus selects release=kps: both fail at once."""
    result = run(mesh_of(names="other", monitor_release="istio"), "-k", "workstation and sidecars_are_scraped or istiod")
    envoy, istiod = result.failure(SCRAPED), result.failure(ISTIOD)
    assert (f"PodMonitor istio-system/envoy-stats-monitor is not selected by {OTHER_CR}: it wants release=kps "
            "(podMonitorSelector), the monitor has release=istio") in envoy
    assert (f"ServiceMonitor istio-system/istio-component-monitor is not selected by {OTHER_CR}: it wants release=kps "
            "(serviceMonitorSelector), the monitor has release=istio") in istiod
    assert result.properties(SCRAPED)["outcome"] == result.properties(ISTIOD)["outcome"] == "precondition"


def test_no_mesh_monitor_but_a_job_of_its_own_scraping_the_sidecars_is_judged_by_its_targets(mesh_of):
    """No Envoy PodMonitor anywhere, but a job of the user's own (Istio's prometheus.io annotations) scrapes the
    sidecars' /stats/prometheus: its pool is judged, and the report says how it was found."""
    kube = mesh_of(names="other", monitor_release=None, envoy_job=("kubernetes-pods", "/stats/prometheus"))
    # A user's job has long found its targets; this one's discovery file is written as the ground starts.
    settle(lambda: web.get(f"{kube.pair.remote.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"],
           "the remote's kubernetes-pods job has no target yet")
    result = run(kube, "-k", "workstation and sidecars_are_scraped")
    assert result.code == 0, result.output
    assert result.properties(SCRAPED)["monitor"] == (
        "none: scrape pool kubernetes-pods scrapes path /stats/prometheus (bring-up name; not found: no PodMonitor "
        "monitoring/envoy-stats and no PodMonitor labelled monitoring=istio-proxies (Istio's sample) or scraping path "
        "/stats/prometheus in any namespace)")


def test_no_mesh_monitor_and_no_job_scraping_the_sidecars_names_the_pool_assumed_and_what_was_looked_for(mesh_of):
    """Nothing scrapes the sidecars: no pool to wait on, said at once with the search."""
    result = run(mesh_of(names="other", monitor_release=None, envoy_job=("kubernetes-pods", "/metrics")),
                 "-k", "workstation and sidecars_are_scraped")
    failure = result.failure(SCRAPED)
    assert result.properties(SCRAPED)["outcome"] == "precondition", failure
    assert "the configuration workstation Prometheus loaded has no scrape pool podMonitor/monitoring/envoy-stats/0: " \
        in failure, failure
    assert ("monitor: PodMonitor monitoring/envoy-stats (bring-up name; not found: no PodMonitor monitoring/envoy-stats "
            "and no PodMonitor labelled monitoring=istio-proxies (Istio's sample) or scraping path /stats/prometheus in "
            "any namespace; no target of workstation Prometheus scrapes path /stats/prometheus)") in failure
