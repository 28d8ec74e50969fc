"""The report's picture grows each cluster's kube-state-metrics hop only when the run's stack has the part."""

from __future__ import annotations

from conformance.reports import picture
from conformance.reports.hops import hops_for
from conformance.reports.model import Check, Run

BASE = {"clusters": "oke,workstation", "primary": "oke"}


def check(cluster: str, outcome: str, message: str = "") -> Check:
    return Check(area="kube_state_metrics", name="the canary pod is described on the primary", cluster=cluster,
                 outcome=outcome, requirement="must", seconds=1.0, properties={}, message=message)


def ksm_titles(run: Run) -> list[str]:
    return [h.title for h in hops_for(run, "oke") if h.area == "kube_state_metrics"]


def test_a_stack_without_the_part_has_no_kube_state_metrics_in_its_picture():
    run = Run(checks=[], properties=BASE)
    assert ksm_titles(run) == []
    assert "kube-state-metrics" not in picture.render(run)


def test_with_the_part_every_cluster_has_its_hop_and_a_failure_colours_its_own():
    run = Run(checks=[check("oke", "passed"),
                      check("workstation", "timed_out", "workstation kube-state-metrics → oke Prometheus: the canary "
                                                        "pod conformance-canary-state/state-canary-1 not described")],
              properties={**BASE, "part.kube-state-metrics": "on"})
    assert ksm_titles(run) == ["oke kube-state-metrics → oke Prometheus", "workstation kube-state-metrics → oke Prometheus"]
    svg = picture.render(run)
    assert '<g class="hop passed" data-hop="oke kube-state-metrics → oke Prometheus"' in svg
    assert '<g class="hop failed" data-hop="workstation kube-state-metrics → oke Prometheus"' in svg
    assert svg.count(">kube-state-metrics</text>") == 2  # a node in each cluster's box
