"""The report's picture grows Prometheus → Alertmanager only when the run's stack has the alerting part."""

from __future__ import annotations

from conformance.reports import picture
from conformance.reports.hops import hops_for
from conformance.reports.model import Check, Run

BASE = {"clusters": "oke,workstation", "primary": "oke"}


def check(cluster: str, outcome: str, message: str = "") -> Check:
    return Check(area="alerting", name="watchdog reaches the alertmanager", cluster=cluster, outcome=outcome,
                 requirement="must", seconds=1.0, properties={}, message=message)


def alerting_titles(run: Run) -> list[str]:
    return [h.title for h in hops_for(run, "oke") if h.area == "alerting"]


def test_a_stack_without_the_part_has_no_alertmanager_in_its_picture():
    run = Run(checks=[], properties=BASE)
    assert alerting_titles(run) == []
    assert "Alertmanager" not in picture.render(run)


def test_with_the_part_every_sender_has_its_hop_and_a_failure_colours_its_own():
    run = Run(checks=[check("oke", "passed"),
                      check("workstation", "timed_out", "workstation Prometheus → oke Alertmanager: no Watchdog")],
              properties={**BASE, "part.alerting": "remote_alerts=primary"})
    assert alerting_titles(run) == ["oke Prometheus → oke Alertmanager", "workstation Prometheus → oke Alertmanager"]
    svg = picture.render(run)
    assert '<g class="hop passed" data-hop="oke Prometheus → oke Alertmanager"' in svg
    assert '<g class="hop failed" data-hop="workstation Prometheus → oke Alertmanager"' in svg
    assert ">Alertmanager</text>" in svg


def test_a_remote_that_sends_nowhere_draws_no_hop():
    run = Run(checks=[], properties={**BASE, "part.alerting": "remote_alerts=none"})
    assert alerting_titles(run) == ["oke Prometheus → oke Alertmanager"]
