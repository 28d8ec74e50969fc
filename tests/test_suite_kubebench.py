"""The kubebench suite against real Pushgateways v1.11.0 scraped by the real Prometheus 3.14 pair, healthy and with
each fault; the node lists and service proxies of the clusters' API servers are the fake kube API's."""

from __future__ import annotations

import httpx
import pytest
import yaml

from tests import web
from tests.fakes.kubeapi import FakeKubeAPI
from tests.proving_ground import start_pair, start_prometheus
from tests.proving_pushgateway import fake_push, scrape_job, start_pushgateway
from tests.suite_runner import run_suites, settle

SCRAPED = "suites.test_kubebench::test_the_pushgateway_is_scraped_on_every_cluster[{}]"
TOTALS = "suites.test_kubebench::test_the_totals_of_every_pushing_node_reach_the_primary[{}]"
FRESH = "suites.test_kubebench::test_every_group_was_pushed_within_the_interval[{}]"
NODES = "suites.test_kubebench::test_every_node_of_the_cluster_has_results[{}]"
HOP = "{c} kube-bench → {c} Pushgateway → oke Prometheus"
# Totals as a kind node's kube-bench run might report them; the checks read them back as pushed.
TOTALS_OF = {"oke-control-plane": {"pass": 42, "fail": 12, "warn": 11}, "oke-worker": {"pass": 17, "fail": 2, "warn": 6},
             "workstation-control-plane": {"pass": 40, "fail": 13, "warn": 12}}


def has(prometheus_url: str, expr: str) -> bool:
    return bool(web.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=5).json()["data"]["result"])


def cluster_api(name: str, prometheus: str, pushgateway: str | None, nodes: list[str]) -> FakeKubeAPI:
    """The cluster's API server: its node list (the seeded <name>-control-plane and more), the stack's Services."""
    api = FakeKubeAPI(name).start()
    for node in nodes:
        if node != api.node_name:
            api.add_node(node)
    api.add_stack_services(prometheus=prometheus)
    # prometheus-pushgateway chart 3.1.1 templates/service.yaml: <fullname> port 9091 named http.
    api.add_service("monitoring", "prometheus-pushgateway", pushgateway, port=9091, port_name="http")
    return api


def topology(folder, apis: dict[str, FakeKubeAPI], parts) -> str:
    clusters = [{"name": name, "role": "primary" if i == 0 else "remote", "provider": "existing",
                 "context": f"kind-{name}", "kubeconfig": str(api.write_kubeconfig(folder / f"kubeconfig-{name}"))}
                for i, (name, api) in enumerate(apis.items())]
    doc = {"clusters": clusters, **({"parts": parts} if parts else {})}
    path = folder / "topology.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


@pytest.fixture
def one_cluster(tmp_path):
    """oke alone: a Pushgateway its Prometheus scrapes as the chart's ServiceMonitor says; the test pushes and
    faults it; yields (pushgateway, start(honor_labels, nodes) -> topology path)."""
    started: list = []
    pg = start_pushgateway(tmp_path / "pg", persistence=True)
    started.append(pg)

    def start(honor_labels: bool = True, nodes: tuple[str, ...] = ("oke-control-plane",), scraped: bool = True,
              parts=("kube-bench",)) -> str:
        jobs = [scrape_job(pg.target, honor_labels)] if scraped else []
        prom = start_prometheus("primary", tmp_path / "prom", cluster="oke", receiver=True, scrape_jobs=jobs)
        started.append(prom)
        start.prometheus = prom
        api = cluster_api("oke", prom.url, pg.url, list(nodes))
        started.append(api)
        return topology(tmp_path, {"oke": api}, list(parts))

    yield pg, start
    for s in reversed(started):
        s.stop()


def test_healthy_stack_passes_every_kubebench_check(tmp_path):
    pgs = {c: start_pushgateway(tmp_path / f"pg-{c}") for c in ("oke", "workstation")}
    apis: dict[str, FakeKubeAPI] = {}
    pair = None
    try:
        for node, totals in TOTALS_OF.items():
            fake_push(pgs[node.split("-")[0]].url, node, totals)  # each node pushes to its own cluster's
        pair = start_pair(tmp_path / "prom", primary_scrape_jobs=[scrape_job(pgs["oke"].target)],
                          remote_scrape_jobs=[scrape_job(pgs["workstation"].target)])
        settle(lambda: has(pair.primary.url, 'kube_bench_total_warn{cluster="workstation", node="workstation-control-plane"}')
               and has(pair.primary.url, 'kube_bench_total_warn{cluster="", node="oke-worker"}'),
               "the totals are not on the primary yet")
        apis["oke"] = cluster_api("oke", pair.primary.url, pgs["oke"].url, ["oke-control-plane", "oke-worker"])
        apis["workstation"] = cluster_api("workstation", pair.remote.url, pgs["workstation"].url, ["workstation-control-plane"])
        topo = topology(tmp_path, apis, {"kube-bench": {"interval": "1h"}})
        run = run_suites(tmp_path, "--topology", topo, "-m", "kube_bench")
    finally:
        for s in [*apis.values(), *([pair] if pair else []), *pgs.values()]:
            s.stop()
    assert run.code == 0, run.output
    assert "optional parts: kube-bench (interval: 1h)" in run.output
    for c in ("oke", "workstation"):
        for case in (SCRAPED, TOTALS, FRESH, NODES):
            assert run.properties(case.format(c))["outcome"] == "passed", case.format(c)
    assert run.properties(TOTALS.format("oke"))["kube_bench_nodes"] == "oke-control-plane,oke-worker"
    # The values as pushed, read back from the primary with the remote's cluster label (remote_write).
    assert run.properties(TOTALS.format("workstation"))["kube_bench_totals.workstation-control-plane"] == "pass=40 fail=13 warn=12"
    assert run.properties(TOTALS.format("oke"))["kube_bench_totals.oke-worker"] == "pass=17 fail=2 warn=6"
    assert run.properties(NODES.format("workstation"))["cluster_nodes"] == "workstation-control-plane"
    # Pushed moments ago: far inside 1 h (+ 15 min).
    assert float(run.properties(FRESH.format("oke"))["kube_bench_oldest_push_age_seconds"]) < 600


def test_a_stack_without_the_part_skips_every_kubebench_check_with_the_reason(tmp_path, one_cluster):
    pg, start = one_cluster
    topo = start(parts=())
    run = run_suites(tmp_path, "--topology", topo, "-m", "kubebench", "-rs")  # the marker's alias: the same checks
    assert run.code == 5, run.output  # nothing else was selected: no check ran (INCOMPLETE), none failed
    for case in (SCRAPED, TOTALS, FRESH, NODES):
        assert run.properties(case.format("oke"))["outcome"] == "not_applicable"
    assert f"kube-bench is not a part of this stack (topology {topo} lists it under parts: when it is)" in run.output


def test_a_stale_pushgateway_group_is_named_with_its_age(tmp_path, one_cluster):
    pg, start = one_cluster
    fake_push(pg.url, "oke-control-plane", TOTALS_OF["oke-control-plane"])
    fake_push(pg.url, "oke-worker", TOTALS_OF["oke-worker"])
    # The Pushgateway serves what it persisted: oke-worker's last push two hours ago (its CronJob stopped since).
    pg.age_group("oke-worker", 2 * 3600)
    topo = start(nodes=("oke-control-plane", "oke-worker"))
    settle(lambda: has(start.prometheus.url, 'time() - push_time_seconds{node="oke-worker"} > 7000'), "no aged push time")
    run = run_suites(tmp_path, "--topology", topo, "-k", "within_the_interval")
    failure = run.failure(FRESH.format("oke"))
    assert run.properties(FRESH.format("oke"))["outcome"] == "failed"
    assert f"{HOP.format(c='oke')}: stale Pushgateway groups: job=kube-bench instance=oke-worker node=oke-worker " \
           "pushed 2 h 0 min ago, longer than the interval 1h plus 15 min for a run to start and finish" in failure
    assert "oke-control-plane pushed" not in failure  # the fresh group is not blamed


def test_a_group_whose_every_push_was_refused_is_named(tmp_path, one_cluster):
    pg, start = one_cluster
    fake_push(pg.url, "oke-control-plane", TOTALS_OF["oke-control-plane"])
    # A push whose kube_bench_total_pass is typed counter, against the gauge of the other group: the Pushgateway
    # refuses it (consistency check) and keeps the group with push_time_seconds 0. This build drops the connection
    # instead of answering 400: logging the refusal panics in prometheus/common v0.61.0 promslog (slog.go:62).
    text = "# TYPE kube_bench_total_pass counter\nkube_bench_total_pass 1\n"
    try:
        refused = web.post(pg.url + "/metrics/job/kube-bench/instance/oke-worker/node/oke-worker", content=text.encode())
        assert refused.status_code == 400, refused.text
    except httpx.RemoteProtocolError:
        pass
    topo = start(nodes=("oke-control-plane", "oke-worker"))
    settle(lambda: has(start.prometheus.url, 'push_time_seconds{node="oke-worker"} == 0'), "no refused group scraped")
    run = run_suites(tmp_path, "--topology", topo, "-k", "within_the_interval")
    failure = run.failure(FRESH.format("oke"))
    assert f"{HOP.format(c='oke')}: Pushgateway groups never pushed successfully: oke-worker " \
           "(push_time_seconds 0: the oke Pushgateway refused every push to them;" in failure


def test_a_node_without_results_is_named_at_once_from_the_pushgateways_groups(tmp_path, one_cluster):
    pg, start = one_cluster
    fake_push(pg.url, "oke-control-plane", TOTALS_OF["oke-control-plane"])
    topo = start(nodes=("oke-control-plane", "oke-worker"))  # oke-worker's CronJob never pushed
    settle(lambda: has(start.prometheus.url, 'kube_bench_total_pass{node="oke-control-plane"}'), "no totals scraped")
    run = run_suites(tmp_path, "--topology", topo, "-k", "every_node")  # the real wait: no group, nothing to wait for
    failure = run.failure(NODES.format("oke"))
    assert run.properties(NODES.format("oke"))["outcome"] == "failed", failure
    assert failure.startswith(f"{HOP.format(c='oke')}: the oke Pushgateway holds no group for oke-worker: its CronJob "
                              "kube-bench-oke-worker has not pushed; a group appears only when the node's own kube-bench "
                              "run pushes, once per parts.kube-bench.interval, so waiting will not bring it"), failure
    assert "the node list: oke-control-plane, oke-worker; the Pushgateway's groups: " in failure
    assert "node=oke-control-plane" in failure


def test_a_node_whose_group_has_not_reached_the_primary_is_told_from_one_never_pushed():
    """The wait's diagnosis (reached only when every node has a group: a scrape or a send may still carry it)."""
    from conformance.probes.kubebench.pushes import why_nodes_missing

    groups = [{"job": "kube-bench", "instance": "oke-worker", "node": "oke-worker"}]
    assert why_nodes_missing(["oke-worker"], groups, "oke", "kube-bench") == \
        "the oke Pushgateway holds oke-worker but the primary does not"
    assert why_nodes_missing(["oke-worker", "oke-w2"], groups, "oke", "kube-bench") == \
        "the oke Pushgateway holds no group for oke-w2: its CronJob kube-bench-oke-w2 has not pushed; " \
        "the oke Pushgateway holds oke-worker but the primary does not"


def test_a_pushgateway_scraped_without_honor_labels_is_named(tmp_path, one_cluster):
    pg, start = one_cluster
    fake_push(pg.url, "oke-control-plane", TOTALS_OF["oke-control-plane"])
    topo = start(honor_labels=False)
    settle(lambda: has(start.prometheus.url, 'kube_bench_total_pass{exported_job="kube-bench"}'), "no renamed series")
    run = run_suites(tmp_path, "--topology", topo, "-k", "reach_the_primary")
    # Every scrape renames the pushed labels alike: said at the first look, not after the 100 s wait.
    failure = run.failure(TOTALS.format("oke"))
    assert run.properties(TOTALS.format("oke"))["outcome"] == "failed"
    assert f"{HOP.format(c='oke')}: the kube-bench series are there but" in failure
    assert "their pushed labels were renamed: job=prometheus-pushgateway, exported_job=kube-bench, " \
           "exported_instance=oke-control-plane: the Pushgateway is scraped without honor_labels; " \
           "set serviceMonitor.honorLabels: true" in failure


def test_a_pushgateway_nobody_scrapes_is_named(tmp_path, one_cluster):
    pg, start = one_cluster
    fake_push(pg.url, "oke-control-plane", TOTALS_OF["oke-control-plane"])
    topo = start(scraped=False)
    start.prometheus.wait_for_targets(1)
    run = run_suites(tmp_path, "--topology", topo, "-k", "scraped_on or reach_the_primary", "--timeout-scale", "0.05")
    # No scrape job for it in the loaded configuration: said at once; what needs that scrape stops at once, naming it.
    scraped, totals = run.failure(SCRAPED.format("oke")), run.failure(TOTALS.format("oke"))
    assert scraped.startswith(f"{HOP.format(c='oke')}: the configuration the oke Prometheus loaded has no scrape job "
                              "serviceMonitor/monitoring/"), scraped
    assert "the chart's ServiceMonitor is not selected by the stack's Prometheus" in scraped
    assert run.properties(SCRAPED.format("oke"))["outcome"] == "precondition"
    assert totals.startswith(f"not run: needs {HOP.format(c='oke')}: the configuration"), totals
    assert run.properties(TOTALS.format("oke"))["outcome"] == "blocked"
    assert run.suite_seconds < 15
