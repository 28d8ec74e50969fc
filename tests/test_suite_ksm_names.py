"""The kube-state-metrics suite with kube-prometheus-stack installed as release `kps` in `observability`: the checks
read the scrape pool of the Service found by its chart's labels; a cluster that does not scrape it is named by that
pool, not the bring-up's."""

from __future__ import annotations

from pathlib import Path

from tests.test_suite_kube_state_metrics import DESCRIBED, SCRAPED, ground_for, run

POOL = "serviceMonitor/observability/kps-kube-state-metrics/0"


def test_kube_state_metrics_of_release_kps_is_read_in_its_own_pool(tmp_path: Path) -> None:
    for g in ground_for(tmp_path, names="other", scraped=("oke",)):
        healthy = run(g, "-k", "oke")
        seen = {case: healthy.properties(case.format("oke"))["outcome"] for case in (SCRAPED, DESCRIBED)}  # before the next run
        broken = run(g, "-k", "scraped and workstation", "--timeout-scale", "0.05")
    assert healthy.code == 0, healthy.output
    assert seen == {SCRAPED: "passed", DESCRIBED: "passed"}
    assert "  oke kube-state-metrics   observability/kps-kube-state-metrics:8080 [labels " in healthy.output
    failure = broken.failure(SCRAPED.format("workstation"))
    assert "workstation kube-state-metrics → oke Prometheus: kube-state-metrics not scraped after" in failure
    assert (f"the workstation Prometheus has no kube-state-metrics target (scrape pool {POOL}): is kube-state-metrics "
            "installed and its ServiceMonitor selected?") in failure
