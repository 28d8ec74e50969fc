"""The app-metrics suite on a stack under a user's own names, through an API server's service proxy with a topology that
has no `services:` entry: the Prometheus found by its resource (release `kps` in `observability`), the example app's
ServiceMonitor judged against that resource's selector, relabelled for it or as the project ships it."""

from __future__ import annotations

import pytest

from tests.fakes.kubeapi import FakeKubeAPI
from tests.proving_app_metrics import app_scrape_job
from tests.proving_ground import start_prometheus
from tests.proving_kube import kps_prometheus_spec
from tests.test_suite_app_metrics import SERIES, TARGET, app, run_through  # noqa: F401 (the fixture)

CR = "Prometheus observability/kps-kube-prometheus-stack-prometheus"


@pytest.mark.parametrize("release", ["kps", "kube-prometheus-stack"], ids=["relabelled", "as-shipped"])
def test_app_metrics_against_the_prometheus_resource_found(tmp_path, app, release: str) -> None:
    """stack/app/example-app-servicemonitor.yaml carries release: kube-prometheus-stack; kps's resource selects
    release=kps (kube-prometheus-stack 88.5.3 templates/prometheus/prometheus.yaml): relabelled it passes, as shipped
    the target check names the label wanted, at once."""
    prom = start_prometheus("primary", tmp_path / "p", cluster="oke", scrape_jobs=[app_scrape_job(app.url)])
    try:
        with FakeKubeAPI("oke") as api:
            api.add_prometheus("observability", "kps-kube-prometheus-stack-prometheus", spec=kps_prometheus_spec("oke", True))
            api.add_service("observability", "prometheus-operated", prom.url, port=9090, port_name="web",
                            labels={"operated-prometheus": "true"})
            api.add_service_monitor("sample", "example-app", labels={"release": release},
                                    spec={"selector": {"matchLabels": {"app": "example-app"}},
                                          "endpoints": [{"port": "http-metrics", "path": "/metrics"}]})
            run = run_through(api, tmp_path)
    finally:
        prom.stop()
    if release == "kps":
        assert run.code == 0, run.output
        assert run.properties(TARGET.format("oke"))["monitor_selection"] == (
            f"ServiceMonitor sample/example-app is selected by {CR} (serviceMonitorSelector: release=kps)")
        assert run.properties(SERIES.format("oke"))["app_version"] == "v0.5.0"
        return
    failure = run.failure(TARGET.format("oke"))
    assert run.properties(TARGET.format("oke"))["outcome"] == "precondition", failure
    assert (f"oke app → oke Prometheus: ServiceMonitor sample/example-app is not selected by {CR}: it wants release=kps "
            "(serviceMonitorSelector), the monitor has release=kube-prometheus-stack") in failure
