"""The kube-bench suite on a stack under a user's own names, with a topology that has no `services:` entry: the
Prometheus found by its resource (release `kps` in `observability`), the Pushgateway by its chart's labels (release
`pgw` in `bench`); the checks read its pool and job as found, and a pool that is not there is named as found."""

from __future__ import annotations

import pytest

from tests.fakes.kubeapi import FakeKubeAPI
from tests.proving_ground import start_pair
from tests.proving_kube import kps_prometheus_spec
from tests.proving_pushgateway import fake_push, scrape_job, start_pushgateway
from tests.suite_runner import run_suites
from tests.test_suite_kubebench import FRESH, NODES, SCRAPED, TOTALS, TOTALS_OF, has, settle, topology

POOL = "serviceMonitor/bench/pgw-prometheus-pushgateway/0"  # the chart's ServiceMonitor, named as its Service
JOB = "pgw-prometheus-pushgateway"  # no jobLabel: the Service's name


def elsewhere_api(name: str, primary: bool, prometheus: str, pushgateway: str, nodes: list[str]) -> FakeKubeAPI:
    """kube-prometheus-stack as release kps in observability (tests/test_discovery.py kps_prometheus) and the
    prometheus-pushgateway chart 3.1.1 as release pgw in bench (templates/service.yaml, _helpers.tpl labels)."""
    api = FakeKubeAPI(name).start()
    for node in nodes:
        if node != api.node_name:
            api.add_node(node)
    api.add_prometheus("observability", "kps-kube-prometheus-stack-prometheus", spec=kps_prometheus_spec(name, primary))
    api.add_service("observability", "prometheus-operated", prometheus, port=9090, port_name="web",
                    labels={"operated-prometheus": "true"})
    api.add_service("bench", JOB, pushgateway, port=9091, port_name="http",
                    labels={"app.kubernetes.io/name": "prometheus-pushgateway", "app.kubernetes.io/instance": "pgw"})
    return api


def pool_job(target: str) -> dict:
    """scrape_job as the operator renders the pgw release's ServiceMonitor: its pool and job."""
    return {**scrape_job(target), "job_name": POOL, "relabel_configs": [{"target_label": "job", "replacement": JOB}]}


@pytest.mark.parametrize("scraped", [True, False], ids=["healthy", "not-scraped"])
def test_kubebench_on_a_pushgateway_under_another_release(tmp_path, scraped: bool) -> None:
    """Healthy: every check passes reading pool and job as found. Its ServiceMonitor unselected (no pool): the
    scrape check names the pool it looked for, the one found, at once."""
    pgs = {c: start_pushgateway(tmp_path / f"pg-{c}") for c in ("oke", "workstation")}
    apis: dict[str, FakeKubeAPI] = {}
    pair = None
    try:
        for node, totals in TOTALS_OF.items():
            fake_push(pgs[node.split("-")[0]].url, node, totals)
        jobs = {c: [pool_job(pgs[c].target)] if scraped or c == "workstation" else [] for c in pgs}
        pair = start_pair(tmp_path / "prom", primary_scrape_jobs=jobs["oke"], remote_scrape_jobs=jobs["workstation"])
        settle(lambda: has(pair.primary.url, 'kube_bench_total_warn{cluster="workstation"}'), "no remote totals yet")
        apis["oke"] = elsewhere_api("oke", True, pair.primary.url, pgs["oke"].url, ["oke-control-plane", "oke-worker"])
        apis["workstation"] = elsewhere_api("workstation", False, pair.remote.url, pgs["workstation"].url,
                                            ["workstation-control-plane"])
        topo = topology(tmp_path, apis, {"kube-bench": {"interval": "1h"}})
        run = run_suites(tmp_path, "--topology", topo, "-m", "kube_bench")
    finally:
        for s in [*apis.values(), *([pair] if pair else []), *pgs.values()]:
            s.stop()
    for c in ("oke", "workstation"):
        assert run.properties(SCRAPED.format(c))["pushgateway_scrape_pool"] == POOL
    if scraped:
        assert run.code == 0, run.output
        for c in ("oke", "workstation"):
            for case in (SCRAPED, TOTALS, FRESH, NODES):
                assert run.properties(case.format(c))["outcome"] == "passed", case.format(c)
        assert "oke pushgateway          bench/pgw-prometheus-pushgateway:9091 [labels " in run.output
        return
    failure = run.failure(SCRAPED.format("oke"))
    assert run.properties(SCRAPED.format("oke"))["outcome"] == "precondition", failure
    assert (f"the configuration the oke Prometheus loaded has no scrape job {POOL}: the chart's ServiceMonitor is not "
            "selected by the stack's Prometheus") in failure
    assert run.properties(SCRAPED.format("workstation"))["outcome"] == "passed"
