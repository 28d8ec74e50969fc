"""The report's picture grows app → Prometheus hops only when the run's stack has the app-metrics part."""

from __future__ import annotations

from conformance.reports import picture
from conformance.reports.hops import hops_for
from conformance.reports.model import Check, Run

BASE = {"clusters": "oke,workstation", "primary": "oke"}


def check(name: str, cluster: str, outcome: str, message: str = "") -> Check:
    return Check(area="app_metrics", name=name, cluster=cluster, outcome=outcome, requirement="must", seconds=1.0,
                 properties={}, message=message)


def titles(run: Run) -> list[str]:
    return [h.title for h in hops_for(run, "oke") if h.area == "app_metrics"]


def test_a_stack_without_the_part_has_no_app_in_its_picture():
    run = Run(checks=[], properties=BASE)
    assert titles(run) == []
    assert ">app</text>" not in picture.render(run)


def test_with_the_part_each_cluster_scrapes_its_app_and_a_remote_write_failure_colours_its_own_hop():
    failure = "workstation app → oke Prometheus (remote_write): no version{job=\"example-app\",cluster=\"workstation\"}"
    run = Run(checks=[check("app target is up", "oke", "passed"), check("app series reach the primary", "oke", "passed"),
                      check("app target is up", "workstation", "passed"),
                      check("app series reach the primary", "workstation", "timed_out", failure)],
              properties={**BASE, "part.app-metrics": "on"})
    assert titles(run) == ["oke app → oke Prometheus", "workstation app → workstation Prometheus",
                           "workstation app → oke Prometheus (remote_write)"]
    svg = picture.render(run)
    assert '<g class="hop passed" data-hop="oke app → oke Prometheus"' in svg
    assert '<g class="hop failed" data-hop="workstation app → oke Prometheus (remote_write)"' in svg
    # The remote's scrape hop is judged by its own checks, not by the failure naming the other hop.
    assert '<g class="hop passed" data-hop="workstation app → workstation Prometheus"' in svg
    assert svg.count(">app</text>") == 2
