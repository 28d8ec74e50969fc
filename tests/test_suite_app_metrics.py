"""The app-metrics suite against the real Prometheus 3.14 pair scraping a fake example app, healthy and with each fault."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from conformance.probes.app_metrics.series import app_metrics
from tests import web
from tests.fakes.example_app import FakeExampleApp
from tests.proving_app_metrics import app_scrape_job
from tests.proving_ground import PrometheusPair, start_pair, start_prometheus
from tests.suite_runner import SuiteRun, run_suites, settle

TARGET = "suites.test_app_metrics::test_app_target_is_up[{}]"
SERIES = "suites.test_app_metrics::test_app_series_reach_the_primary[{}]"
POOL = app_metrics().pool  # serviceMonitor/sample/example-app/0


def topology(folder, pair: PrometheusPair, parts=("app-metrics",)):
    doc = {"clusters": [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": pair.primary.url}},
        {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"prometheus": pair.remote.url}},
    ]}
    if parts:
        doc["parts"] = list(parts)
    path = folder / "topology.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run_through(api, folder) -> SuiteRun:
    """The app-metrics checks of a topology whose one cluster, the primary, is reached through `api` (a kube API)."""
    kubeconfig = api.write_kubeconfig(folder / "kubeconfig")
    topo = folder / "topology.yaml"
    topo.write_text(yaml.safe_dump({"clusters": [{"name": "oke", "role": "primary", "provider": "existing",
                                                  "context": "kind-oke", "kubeconfig": str(kubeconfig)}],
                                    "parts": ["app-metrics"]}))
    return run_suites(folder, "--topology", str(topo), "-m", "app_metrics")


def query(url: str, expr: str) -> list[dict]:
    return web.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()["data"]["result"]


def app_health(url: str) -> str:
    targets = web.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    return next((t["health"] for t in targets if t["scrapePool"] == POOL), "")


def dropped(url: str) -> int:
    targets = web.get(f"{url}/api/v1/targets", params={"state": "dropped"}, timeout=5).json()["data"]["droppedTargets"]
    return sum(1 for t in targets if t.get("scrapePool") == POOL)


@pytest.fixture
def app() -> Iterator[FakeExampleApp]:
    with FakeExampleApp() as a:
        yield a


def pair_scraping(folder, primary_app: str | None, remote_app: str | None) -> PrometheusPair:
    """The pair, each Prometheus scraping the app under its ServiceMonitor's pool when given one (None: not selected)."""
    return start_pair(folder, primary_scrape_jobs=[app_scrape_job(primary_app)] if primary_app else None,
                      remote_scrape_jobs=[app_scrape_job(remote_app, pod="example-app-5c6d7f8b9-q7w2e")] if remote_app else None)


def test_healthy_stack_passes_every_app_metrics_check(tmp_path, app):
    pair = pair_scraping(tmp_path / "prom", app.url, app.url)
    try:
        run = run_suites(tmp_path, "--topology", str(topology(tmp_path, pair)), "-m", "app_metrics")
    finally:
        pair.stop()
    assert run.code == 0, run.output
    for cluster in ("oke", "workstation"):
        assert run.properties(TARGET.format(cluster))["app_target"] == f"1 target(s) up in {POOL}"
        series = run.properties(SERIES.format(cluster))
        assert series["outcome"] == "passed"
        assert series["app_series"] == "1"  # one pod's version gauge per cluster
        assert series["app_version"] == "v0.5.0"  # the pin, as the app labels its gauge
    assert "optional parts: app-metrics" in run.output


def test_a_stack_without_the_part_skips_every_app_metrics_check_with_the_reason(tmp_path, prometheus_pair):
    topo = topology(tmp_path, prometheus_pair, parts=())
    run = run_suites(tmp_path, "--topology", str(topo), "-m", "app_metrics", "-rs")
    assert run.code == 5, run.output  # nothing else was selected: no check ran (INCOMPLETE), none failed
    for case in (TARGET.format("oke"), SERIES.format("workstation")):
        assert run.properties(case)["outcome"] == "not_applicable"
    assert f"app-metrics is not a part of this stack (topology {topo} lists it under parts: when it is)" in run.output


def test_a_servicemonitor_the_prometheus_does_not_select_is_named_with_the_label_it_wants(tmp_path, app):
    # Without release: kube-prometheus-stack the operator generates no scrape config: the remote has no app pool.
    pair = pair_scraping(tmp_path / "prom", app.url, None)
    try:
        run = run_suites(tmp_path, "--topology", str(topology(tmp_path, pair)), "-m", "app_metrics", "-k", "workstation",
                         "--timeout-scale", "0.05")
    finally:
        pair.stop()
    # The loaded configuration has no job for it: no wait brings one, so it is said at the first look.
    target = run.failure(TARGET.format("workstation"))
    assert f"workstation app → workstation Prometheus: the configuration the workstation Prometheus loaded has no " \
           f"scrape job {POOL}: the operator did not select ServiceMonitor sample/example-app; it selects " \
           "ServiceMonitors labelled release=kube-prometheus-stack " \
           "(prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues: true)" in target
    assert run.properties(TARGET.format("workstation"))["outcome"] == "precondition"
    # Nothing scraped there, nothing to forward: the series check stops at once naming the target check.
    series = run.failure(SERIES.format("workstation"))
    assert series.startswith("not run: needs workstation app → workstation Prometheus: the configuration"), series
    assert "(found by app target is up[workstation])" in series
    assert run.properties(SERIES.format("workstation"))["outcome"] == "blocked"


def test_a_servicemonitor_whose_port_matches_no_endpoint_is_named_with_the_service(tmp_path, app):
    # Selected (the pool exists) but the Service names its port otherwise: the operator's keep rule drops it.
    prom = start_prometheus("primary", tmp_path / "p", cluster="oke", scrape_jobs=[app_scrape_job(app.url, service_port="http")])
    try:
        path = tmp_path / "topology.yaml"
        path.write_text(yaml.safe_dump({"clusters": [{"name": "oke", "role": "primary", "provider": "endpoints",
                                                      "services": {"prometheus": prom.url}}], "parts": ["app-metrics"]}))
        settle(lambda: dropped(prom.url), "service discovery has not dropped the app's endpoint yet")
        run = run_suites(tmp_path, "--topology", str(path), "-k", "target_is_up", "--timeout-scale", "0.05")
    finally:
        prom.stop()
    target = run.failure(TARGET.format("oke"))
    assert f"oke app → oke Prometheus: no up target in scrape pool {POOL} after" in target
    assert f"scrape pool {POOL} discovers no target (1 endpoints dropped by its relabelling): Service sample/example-app " \
           "has no ready endpoint on port http-metrics" in target


def test_an_app_whose_metrics_endpoint_fails_is_named_with_the_scrape_error(tmp_path, app):
    app.failing = True
    pair = pair_scraping(tmp_path / "prom", app.url, app.url)
    try:
        settle(lambda: app_health(pair.primary.url) == "down", "the app target is not down yet")
        run = run_suites(tmp_path, "--topology", str(topology(tmp_path, pair)), "-m", "app_metrics", "-k", "oke",
                         "--timeout-scale", "0.05")
    finally:
        pair.stop()
    target = run.failure(TARGET.format("oke"))
    assert f"oke app → oke Prometheus: no up target in scrape pool {POOL} after" in target
    assert f"target {app.url}/metrics of {POOL} is down: server returned HTTP status 500 Internal Server Error" in target
    # The target check waited out its budget and named the cause: the series check needs that hop, stops at once.
    series = run.failure(SERIES.format("oke"))
    assert series.startswith(f"not run: needs oke app → oke Prometheus: no up target in scrape pool {POOL}"), series
    assert "(found by app target is up[oke])" in series


def test_a_remote_that_does_not_forward_the_app_series_is_named_on_the_remote_write_hop(tmp_path, app):
    pair = pair_scraping(tmp_path / "prom", app.url, app.url)
    try:
        pair.remote.drop_from_remote_write(app_metrics().job)
        settle(lambda: query(pair.remote.url, 'version{job="example-app"}'), "the remote holds no app series")
        # The rest still flows, so only the app's series are missing on the primary.
        settle(lambda: query(pair.primary.url, 'up{cluster="workstation",job="prometheus"}'), "nothing remote-written")
        run = run_suites(tmp_path, "--topology", str(topology(tmp_path, pair)), "-m", "app_metrics", "-k", "workstation",
                         "--timeout-scale", "0.05")
    finally:
        pair.stop()
    assert run.properties(TARGET.format("workstation"))["outcome"] == "passed"  # scraped on its own cluster
    series = run.failure(SERIES.format("workstation"))
    assert 'workstation app → oke Prometheus (remote_write): no version{job="example-app",cluster="workstation"} ' \
           "on the oke Prometheus after" in series
    assert f'the workstation Prometheus holds 1 version{{job="example-app"}} series, the primary none: its remote_write ' \
           f"to {pair.primary.url}/api/v1/write has write_relabel_configs, which drop them" in series


def test_every_check_passes_through_the_api_servers_service_proxy(tmp_path, app):
    """The chart's Prometheus Service (stack/services.yaml) behind a Kubernetes API server's service proxy."""
    from tests.fakes.kubeapi import FakeKubeAPI

    prom = start_prometheus("primary", tmp_path / "p", cluster="oke", scrape_jobs=[app_scrape_job(app.url)])
    try:
        with FakeKubeAPI("oke") as api:
            api.add_stack_services(prometheus=prom.url)
            run = run_through(api, tmp_path)
            proxied = [r.path for r in api.requests if "/proxy/" in r.path]
    finally:
        prom.stop()
    assert run.code == 0, run.output
    assert run.properties(SERIES.format("oke"))["app_version"] == "v0.5.0"
    assert any(p.endswith("/proxy/api/v1/scrape_pools") or "/proxy/api/v1/targets" in p for p in proxied), proxied


def test_a_remote_write_hop_known_broken_stops_the_remotes_series_check_at_once(tmp_path, app):
    # The primary refuses remote write: the metrics check establishes the remote's hop broken (a precondition),
    # and the app's series check of that remote stops at once; the primary's own app series still pass.
    pair = start_pair(tmp_path / "prom", receiver=False, primary_scrape_jobs=[app_scrape_job(app.url)],
                      remote_scrape_jobs=[app_scrape_job(app.url)])
    try:
        run = run_suites(tmp_path, "--topology", str(topology(tmp_path, pair)), "-m", "metrics or app_metrics",
                         "-k", "reach_the_primary")
    finally:
        pair.stop()
    assert run.properties("suites.test_metrics::test_remote_series_reach_the_primary[workstation]")["outcome"] == "precondition"
    stopped = run.failure(SERIES.format("workstation"))
    assert "not run: needs workstation Prometheus → oke Prometheus (remote_write): " in stopped
    assert "the remote-write receiver is disabled" in stopped
    assert run.properties(SERIES.format("workstation"))["outcome"] == "blocked"
    assert run.properties(SERIES.format("oke"))["outcome"] == "passed"  # its own series need no remote write
