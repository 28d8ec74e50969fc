"""The alerting suite on a stack under a user's own names, through an API server's service proxy with a topology that
has no `services:` entry: kube-prometheus-stack as release `kps` in `observability`, its Prometheus and Alertmanager
found by their resources; with no Alertmanager resource the Alertmanager's checks say what was looked for."""

from __future__ import annotations

import yaml

from tests.fakes.kubeapi import FakeKubeAPI
from tests.proving_alertmanager import WATCHDOG_RULES
from tests.proving_ground import start_prometheus
from tests.proving_kube import kps_prometheus_spec
from tests.suite_runner import SuiteRun, run_suites
from tests.test_suite_alerting import FIRES, READY, REACHES, am  # noqa: F401 (the fixture)


def users_stack(api: FakeKubeAPI, prometheus: str, alertmanager: str | None) -> None:
    """kube-prometheus-stack 88.5.3 templates/prometheus/prometheus.yaml and templates/alertmanager/alertmanager.yaml
    for release kps; prometheus-operator v0.93.0's governing Services prometheus-operated (web 9090) and
    alertmanager-operated (web 9093, tcp-mesh 9094) (tests/test_discovery.py kps_prometheus, kps_alertmanager)."""
    api.add_prometheus("observability", "kps-kube-prometheus-stack-prometheus", spec=kps_prometheus_spec("oke", True))
    api.add_service("observability", "prometheus-operated", prometheus, port=9090, port_name="web",
                    labels={"operated-prometheus": "true"})
    if alertmanager:
        api.add_alertmanager("observability", "kps-kube-prometheus-stack-alertmanager")
        api.add_service("observability", "alertmanager-operated", ports=[
            {"name": "web", "port": 9093, "backend": alertmanager}, {"name": "tcp-mesh", "port": 9094}],
            labels={"operated-alertmanager": "true"})


def run_through(tmp_path, api: FakeKubeAPI, name: str) -> SuiteRun:
    kubeconfig = api.write_kubeconfig(tmp_path / f"kubeconfig-{name}")
    topo = tmp_path / f"{name}.yaml"
    topo.write_text(yaml.safe_dump({"clusters": [{"name": "oke", "role": "primary", "provider": "existing",
                                                  "context": "kind-oke", "kubeconfig": str(kubeconfig)}],
                                    "parts": ["alerting"]}))
    return run_suites(tmp_path, "--topology", str(topo), "-m", "alerting")


def test_alerting_finds_the_alertmanager_by_its_resource_or_says_what_it_looked_for(tmp_path, am) -> None:
    prom = start_prometheus("primary", tmp_path / "p", cluster="oke", rule_files=[WATCHDOG_RULES],
                            alertmanagers=[am.target])
    try:
        with FakeKubeAPI("oke") as api:
            users_stack(api, prom.url, am.url)
            found = run_through(tmp_path, api, "found")
            proxied = {r.path.split("/proxy")[0] for r in api.requests if "/proxy/" in r.path}
        with FakeKubeAPI("oke") as api:
            users_stack(api, prom.url, None)
            absent = run_through(tmp_path, api, "absent")
    finally:
        prom.stop()
    assert found.code == 0, found.output
    assert "/api/v1/namespaces/observability/services/http:alertmanager-operated:9093" in proxied
    assert ("  oke alertmanager         observability/alertmanager-operated:9093 [Alertmanager observability/"
            "kps-kube-prometheus-stack-alertmanager]") in found.output
    looked = ("oke Alertmanager: not found: no Service monitoring/kube-prometheus-stack-alertmanager (the bring-up's "
              "name) and no Alertmanager resources (monitoring.coreos.com/v1) and their alertmanager-operated Service "
              "in any namespace; name it in topology")
    assert looked in absent.output, absent.output
    assert absent.code == 5, absent.output  # INCOMPLETE: the Alertmanager's hops could not be observed
    assert absent.properties(FIRES.format("oke"))["outcome"] == "passed"  # Prometheus' own rule still fires
    for case in (READY, REACHES.format("oke")):
        assert absent.properties(case)["outcome"] not in ("passed", "failed"), case
