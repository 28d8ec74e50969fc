"""The report's picture grows kube-bench → Pushgateway → Prometheus on each cluster only with the kube-bench part."""

from __future__ import annotations

import pytest

from conformance.reports import picture
from conformance.reports.hops import hops_for
from conformance.reports.model import Check, Run, check_from_properties

BASE = {"clusters": "oke,workstation", "primary": "oke"}
TITLES = ["oke kube-bench → oke Pushgateway → oke Prometheus",
          "workstation kube-bench → workstation Pushgateway → oke Prometheus"]


def check(cluster: str, outcome: str, message: str = "", area: str = "kube_bench") -> Check:
    return Check(area=area, name="every group was pushed within the interval", cluster=cluster, outcome=outcome,
                 requirement="must", seconds=1.0, properties={}, message=message)


def kubebench_titles(run: Run) -> list[str]:
    return [h.title for h in hops_for(run, "oke") if h.area == "kube_bench"]


def test_a_stack_without_the_part_has_no_pushgateway_in_its_picture():
    run = Run(checks=[], properties=BASE)
    assert kubebench_titles(run) == []
    svg = picture.render(run)
    assert "Pushgateway" not in svg and "kube-bench" not in svg


@pytest.mark.parametrize("failing", ["oke", "workstation"])
def test_with_the_part_each_cluster_has_its_hop_and_a_failure_colours_its_own(failing):
    passing = "workstation" if failing == "oke" else "oke"
    run = Run(checks=[check(passing, "passed"),
                      check(failing, "failed", f"{failing} kube-bench → {failing} Pushgateway → oke Prometheus: stale")],
              properties={**BASE, "part.kube-bench": "interval=1h"})
    assert kubebench_titles(run) == TITLES
    svg = picture.render(run)
    assert f'<g class="hop failed" data-hop="{failing} kube-bench → {failing} Pushgateway → oke Prometheus"' in svg
    assert f'<g class="hop passed" data-hop="{passing} kube-bench → {passing} Pushgateway → oke Prometheus"' in svg
    assert svg.count(">Pushgateway</text>") == 2 and svg.count(">kube-bench</text>") == 2
    assert 'height="510"' in svg  # the primary's box grows by a row for its kube-bench and Pushgateway


def test_a_report_written_before_the_part_was_hyphenated_still_draws_and_colours_its_hops():
    """An older junit.xml says part.kubebench and area kubebench; re-rendered, it reads as kube-bench's."""
    def old(cluster: str, outcome: str, message: str = "") -> Check:
        props = {"cluster": cluster, "outcome": outcome, "requirement": "must", "area": "kubebench"}
        return check_from_properties(props, message=message, name="every group was pushed within the interval")

    run = Run(checks=[old("oke", "passed"),
                      old("workstation", "failed", "workstation kube-bench → workstation Pushgateway → oke Prometheus: stale")],
              properties={**BASE, "part.kubebench": "interval=1h"})
    assert kubebench_titles(run) == TITLES
    svg = picture.render(run)
    assert '<g class="hop failed" data-hop="workstation kube-bench → workstation Pushgateway → oke Prometheus"' in svg
