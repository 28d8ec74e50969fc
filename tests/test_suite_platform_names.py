"""The targets check on a stack under a user's own names: the jobs required are the monitors the cluster's Prometheus
resource selects (kube-prometheus-stack as release kps in observability), not the bring-up's release's."""

from __future__ import annotations

import pytest
import yaml

from conformance.probes.platform.scrape_jobs import ChartRelease, required_jobs
from tests.fakes.envoy import FakeEnvoy
from tests.fakes.exporter import FakeExporter
from tests.fakes.kubeapi import FakeKubeAPI
from tests.proving_ground import start_prometheus
from tests.proving_kube import kps_prometheus_spec
from tests.proving_stack import stack_scrape_jobs
from tests.suite_runner import run_suites
from tests.test_suite_platform import TARGETS

KPS = ChartRelease("kps", "kps-kube-prometheus-stack", "observability", "")
# kube-prometheus-stack 88.5.3 templates/_helpers.tpl kube-prometheus-stack.labels, on the Prometheus resource.
LABELS = {"app": "kube-prometheus-stack-prometheus", "app.kubernetes.io/instance": "kps",
          "app.kubernetes.io/part-of": "kube-prometheus-stack", "chart": "kube-prometheus-stack-88.5.3", "release": "kps"}


def test_kps_monitor_names() -> None:
    jobs = {j.job: j.monitor for j in required_jobs("primary", chart=KPS, project=False)}
    assert jobs["kubelet"] == "serviceMonitor/observability/kps-kube-prometheus-stack-kubelet"
    assert jobs["kps-kube-prometheus-stack-operator"] == "serviceMonitor/observability/kps-kube-prometheus-stack-operator"
    assert jobs["kube-state-metrics"] == "serviceMonitor/observability/kps-kube-state-metrics"  # a subchart: <release>-
    assert jobs["kps-grafana"] == "serviceMonitor/observability/kps-grafana"


@pytest.mark.parametrize("omit", [(), ("kubelet",)], ids=["healthy", "kubelet-unselected"])
def test_the_required_jobs_are_the_found_releases(tmp_path, omit: tuple[str, ...]) -> None:
    with FakeExporter() as exporter, FakeEnvoy() as envoy:
        jobs = stack_scrape_jobs("primary", exporter.url, [envoy.url], chart=KPS, omit=omit)
        prometheus = start_prometheus("primary", tmp_path / "p", cluster="oke", receiver=True, scrape_jobs=jobs)
        try:
            prometheus.wait_for_targets(sum(bool(j["static_configs"][0]["targets"]) for j in jobs) + 1)
            with FakeKubeAPI("oke") as api:
                api.add_custom_object("monitoring.coreos.com", "v1", "prometheuses", "observability", {
                    "metadata": {"name": "kps-kube-prometheus-stack-prometheus", "labels": LABELS},
                    "spec": kps_prometheus_spec("oke", True)})
                api.add_service("observability", "prometheus-operated", prometheus.url, port=9090, port_name="web")
                for job in required_jobs("primary", chart=KPS, project=False):  # the chart's monitors, as it renders them
                    kind, ns, name = job.monitor.split("/")[:3]
                    api.add_custom_object("monitoring.coreos.com", "v1", f"{kind.lower()}s", ns, {
                        "kind": kind[0].upper() + kind[1:], "metadata": {"name": name, "namespace": ns,
                                                                          "labels": {"release": "kps"}}})
                topo = tmp_path / "topology.yaml"
                topo.write_text(yaml.safe_dump({"clusters": [{
                    "name": "oke", "role": "primary", "provider": "existing", "context": "kind-oke",
                    "kubeconfig": str(api.write_kubeconfig(tmp_path / "kubeconfig"))}]}))
                run = run_suites(tmp_path, "--topology", str(topo), "-m", "platform", "-k", "target")
        finally:
            prometheus.stop()
    props = run.properties(TARGETS)
    assert props["required_jobs_from"].startswith(
        "the monitors Prometheus observability/kps-kube-prometheus-stack-prometheus selects"), props
    if not omit:
        assert run.code == 0, run.output
        assert "observability/kps-kube-prometheus-stack-operator" in props["required_jobs"].split(","), props
        return
    failure = run.failure(TARGETS)
    assert props["outcome"] == "precondition", failure
    assert ("the configuration oke Prometheus loaded has no scrape pool for observability/kps-kube-prometheus-stack-kubelet "
            "(serviceMonitor/observability/kps-kube-prometheus-stack-kubelet)") in failure, failure
    assert "the Prometheus resource selects their monitors, yet the operator rendered no scrape pool" in failure
