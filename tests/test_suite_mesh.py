"""The mesh suite against real Prometheus scraping fake Envoy and istiod endpoints under the operator's pool names."""

from __future__ import annotations

from contextlib import ExitStack
from urllib.parse import urlsplit


from conformance.core.manifests import ENVOY_POOL, ISTIOD_POOL
from tests.fakes.envoy import FakeEnvoy, FakeIstiod, request_series
from tests.proving_ground import free_port, start_pair
from tests.suite_runner import run_suites, write_topology

SCRAPED = "suites.test_mesh::test_envoy_sidecars_are_scraped[{}]"
ON_PRIMARY = "suites.test_mesh::test_envoy_series_are_queryable_on_the_primary[{}]"
ISTIOD = "suites.test_mesh::test_istiod_is_scraped_with_its_metrics"
CROSS = "suites.test_mesh::test_mesh_requests_cross_from_the_remote_to_the_primary[workstation]"
CROSSING = [request_series("source", "workstation", "oke")]  # the remote client's sidecar
SERVED = [request_series("destination", "workstation", "oke")]  # the primary server's sidecar


def job(pool: str, url: str | None, path: str) -> list[dict]:
    """A scrape job named like the operator's pool, at url (None: the operator selected no monitor, so there is no
    such job; "": the monitor is selected but no pod matches it, so the pool has no target)."""
    if url is None:
        return []
    targets = [urlsplit(url).netloc] if url else []
    return [{"job_name": pool, "metrics_path": path, "static_configs": [{"targets": targets}]}]


def run_mesh(tmp_path, *, remote_envoy: str | None, primary_envoy: str, istiod: str, args=()):
    pair = start_pair(tmp_path / "prom",
                      primary_scrape_jobs=job(ENVOY_POOL, primary_envoy, "/stats/prometheus") + job(ISTIOD_POOL, istiod, "/metrics"),
                      remote_scrape_jobs=job(ENVOY_POOL, remote_envoy, "/stats/prometheus"))
    try:
        pair.wait_until_remote_arrives(jobs=1 + bool(remote_envoy))
        topo = write_topology(tmp_path, [
            {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": pair.primary.url}},
            {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"prometheus": pair.remote.url}},
        ])
        return run_suites(tmp_path, "--topology", str(topo), "-m", "mesh", *args)
    finally:
        pair.stop()


def servers(*fakes):
    stack = ExitStack()
    for fake in fakes:
        stack.enter_context(fake)
    return stack


def test_healthy_mesh_passes_and_records_counts(tmp_path):
    remote, primary, istiod = FakeEnvoy(CROSSING), FakeEnvoy(SERVED), FakeIstiod()
    with servers(remote, primary, istiod):
        run = run_mesh(tmp_path, remote_envoy=remote.url, primary_envoy=primary.url, istiod=istiod.url)
    assert run.code == 0, run.output
    assert run.properties(SCRAPED.format("workstation"))["envoy_targets"] == "1"
    assert run.properties(ON_PRIMARY.format("workstation"))["envoy_series"] == "1"
    assert run.properties(CROSS)["cross_cluster_series"] == "2"  # one per reporting sidecar


def test_unselected_pod_monitor_fails_at_once_saying_why(tmp_path):
    """No such pool in the configuration Prometheus loaded: the operator selected no PodMonitor, and no wait helps."""
    primary, istiod = FakeEnvoy(SERVED), FakeIstiod()
    with servers(primary, istiod):
        run = run_mesh(tmp_path, remote_envoy=None, primary_envoy=primary.url, istiod=istiod.url,
                       args=("-k", "sidecars_are_scraped"))  # at the real timeouts: 90 s if it waited
    failure = run.failure(SCRAPED.format("workstation"))
    assert (f"workstation Envoy → workstation Prometheus: the configuration workstation Prometheus loaded has no scrape "
            f"pool {ENVOY_POOL}: ") in failure
    assert ("the PodMonitor monitoring/envoy-stats is not selected by the Prometheus (its podMonitorSelector decides; "
            "the Prometheus resource of workstation cannot be read: ") in failure
    assert "the PodMonitor monitoring/envoy-stats applied by this project carries release=kube-prometheus-stack" in failure
    assert "scrape jobs of the configuration loaded at " in failure
    assert run.properties(SCRAPED.format("workstation"))["outcome"] == "precondition"
    assert "failure" not in {c.tag for c in run.cases()[SCRAPED.format("oke")]}


def test_a_selected_pod_monitor_without_a_pod_waits_then_says_why(tmp_path):
    """The pool is configured but matches no pod: one may still come (a rollout), so the check waits, then says so."""
    primary, istiod = FakeEnvoy(SERVED), FakeIstiod()
    with servers(primary, istiod):
        run = run_mesh(tmp_path, remote_envoy="", primary_envoy=primary.url, istiod=istiod.url,
                       args=("-k", "sidecars_are_scraped", "--timeout-scale", "0.05"))
    failure = run.failure(SCRAPED.format("workstation"))
    assert f"workstation Envoy → workstation Prometheus: no targets in scrape pool {ENVOY_POOL} after" in failure
    assert "or no pod matches it" in failure
    assert run.properties(SCRAPED.format("workstation"))["outcome"] == "timed_out"


def test_a_down_sidecar_target_fails_at_once_with_its_error(tmp_path):
    primary, istiod = FakeEnvoy(SERVED), FakeIstiod()
    closed = f"http://127.0.0.1:{free_port()}"
    with servers(primary, istiod):
        run = run_mesh(tmp_path, remote_envoy=closed, primary_envoy=primary.url, istiod=istiod.url, args=("-k", "sidecars_are_scraped"))
    failure = run.failure(SCRAPED.format("workstation"))
    assert f"1 of 1 targets in {ENVOY_POOL} are down" in failure
    assert "connection refused" in failure
    assert run.properties(SCRAPED.format("workstation"))["outcome"] == "failed"


def test_istiod_without_its_metrics_is_named(tmp_path):
    remote, primary, istiod = FakeEnvoy(CROSSING), FakeEnvoy(SERVED), FakeIstiod(metrics=("istio_build",))
    with servers(remote, primary, istiod):
        run = run_mesh(tmp_path, remote_envoy=remote.url, primary_envoy=primary.url, istiod=istiod.url, args=("-k", "istiod"))
    assert "oke istiod → oke Prometheus: istiod is scraped but pilot_xds_pushes is missing" in run.failure(ISTIOD)


def test_traffic_that_never_crosses_clusters_times_out(tmp_path):
    local_only = [request_series("source", "workstation", "workstation")]
    remote, primary, istiod = FakeEnvoy(local_only), FakeEnvoy(), FakeIstiod()
    with servers(remote, primary, istiod):
        run = run_mesh(tmp_path, remote_envoy=remote.url, primary_envoy=primary.url, istiod=istiod.url,
                       args=("-k", "cross", "--timeout-scale", "0.05"))
    failure = run.failure(CROSS)
    assert "workstation sample client → oke sample server (mesh): no istio_requests_total from workstation to oke after" in failure
    assert "'destination_cluster': 'workstation'" in failure  # what it did see (any code)


def test_a_crossing_request_reported_by_one_side_only_fails(tmp_path):
    remote, primary, istiod = FakeEnvoy(), FakeEnvoy(SERVED), FakeIstiod()
    with servers(remote, primary, istiod):
        run = run_mesh(tmp_path, remote_envoy=remote.url, primary_envoy=primary.url, istiod=istiod.url,
                       args=("-k", "cross", "--timeout-scale", "0.05"))
    failure = run.failure(CROSS)
    assert "no istio_requests_total from workstation to oke after" in failure
    assert "reported by ['destination'] only; both sidecars should report it" in failure
    assert run.properties(CROSS)["outcome"] == "timed_out"


def test_traffic_answered_only_with_5xx_fails_naming_the_code(tmp_path):
    """The request crosses, but the server answers 503: no 2xx pair, and the timeout names the code."""
    failing = [request_series("source", "workstation", "oke", code="503")]
    remote, primary, istiod = FakeEnvoy(failing), FakeEnvoy([request_series("destination", "workstation", "oke", code="503")]), FakeIstiod()
    with servers(remote, primary, istiod):
        run = run_mesh(tmp_path, remote_envoy=remote.url, primary_envoy=primary.url, istiod=istiod.url,
                       args=("-k", "cross", "--timeout-scale", "0.05"))
    failure = run.failure(CROSS)
    assert "no istio_requests_total from workstation to oke after" in failure
    assert "requests cross but answer response_code 503 only, never 2xx" in failure
    assert 'response_code=~"2.."' in failure  # the pinned selector is shown with the last state
    assert run.properties(CROSS)["outcome"] == "timed_out"


def test_series_left_by_earlier_traffic_that_do_not_grow_are_no_crossing(tmp_path):
    """Both sidecars' 2xx series are there but none grows while the check runs: no request crossed during it."""
    remote, primary, istiod = FakeEnvoy(CROSSING, growing=False), FakeEnvoy(SERVED, growing=False), FakeIstiod()
    with servers(remote, primary, istiod):
        run = run_mesh(tmp_path, remote_envoy=remote.url, primary_envoy=primary.url, istiod=istiod.url,
                       args=("-k", "cross", "--timeout-scale", "0.05"))
    failure = run.failure(CROSS)
    assert run.properties(CROSS)["outcome"] == "timed_out", failure
    assert "workstation sample client → oke sample server (mesh): no istio_requests_total from workstation to oke " \
           "after" in failure, failure
    assert "2 series of earlier 2xx requests are there, but none grew while the check ran: no request crossed " \
           "during it" in failure, failure


def test_another_workloads_crossing_does_not_count(tmp_path):
    """Only the sample client's request to helloworld counts, as Istio's tests pin source_workload and destination_service."""
    other = [request_series(r, "workstation", "oke", source_workload="someone-else") for r in ("source", "destination")]
    remote, primary, istiod = FakeEnvoy(other[:1]), FakeEnvoy(other[1:]), FakeIstiod()
    with servers(remote, primary, istiod):
        run = run_mesh(tmp_path, remote_envoy=remote.url, primary_envoy=primary.url, istiod=istiod.url,
                       args=("-k", "cross", "--timeout-scale", "0.05"))
    # Without Kubernetes access the check cannot start the sample's traffic, and none of it is there: not a pass.
    skipped = run.cases()[CROSS].find("skipped")
    assert skipped is not None and "no mesh traffic from workstation to observe" in skipped.get("message")


def test_no_traffic_and_no_way_to_start_it_is_skipped_with_the_reason(tmp_path):
    remote, primary, istiod = FakeEnvoy(), FakeEnvoy(), FakeIstiod()
    with servers(remote, primary, istiod):
        run = run_mesh(tmp_path, remote_envoy=remote.url, primary_envoy=primary.url, istiod=istiod.url, args=("-k", "cross"))
    skipped = run.cases()[CROSS].find("skipped")
    assert "no mesh traffic from workstation to observe" in skipped.get("message")
    assert "no Kubernetes access" in skipped.get("message")
