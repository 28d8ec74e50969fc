"""The report's picture grows each cluster's event exporter → primary Loki only when the run's stack has events."""

from __future__ import annotations

from conformance.reports import picture
from conformance.reports.hops import hops_for
from conformance.reports.model import AREAS, Check, Run

BASE = {"clusters": "oke,workstation", "primary": "oke"}


def check(cluster: str, outcome: str, message: str = "") -> Check:
    return Check(area="events", name="an event reaches the primary loki", cluster=cluster, outcome=outcome,
                 requirement="must", seconds=1.0, properties={}, message=message)


def events_titles(run: Run) -> list[str]:
    return [h.title for h in hops_for(run, "oke") if h.area == "events"]


def test_a_stack_without_the_part_has_no_event_exporter_in_its_picture():
    run = Run(checks=[], properties=BASE)
    assert events_titles(run) == []
    assert "event exporter" not in picture.render(run)


def test_with_the_part_each_cluster_has_its_hop_and_a_failure_colours_its_own():
    run = Run(checks=[check("oke", "passed"),
                      check("workstation", "timed_out", "workstation event exporter → oke Loki: the event not in Loki")],
              properties={**BASE, "part.events": "on"})
    # The titles are the suites' hop names (conformance/hops.py "events").
    assert events_titles(run) == ["oke event exporter → oke Loki", "workstation event exporter → oke Loki"]
    svg = picture.render(run)
    assert '<g class="hop passed" data-hop="oke event exporter → oke Loki"' in svg
    assert '<g class="hop failed" data-hop="workstation event exporter → oke Loki"' in svg
    assert svg.count(">event exporter</text>") == 2


def test_events_checks_sort_after_the_default_areas():
    assert AREAS.index("events") > AREAS.index("platform")
