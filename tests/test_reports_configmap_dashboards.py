"""The report's picture grows ConfigMap → Grafana only when the run's stack has the configmap-dashboards part."""

from __future__ import annotations

import pytest

from conformance.reports import picture
from conformance.reports.hops import hops_for
from conformance.reports.model import Check, Run

BASE = {"clusters": "oke,workstation", "primary": "oke"}
HOP = "oke ConfigMap → Grafana sidecar → oke Grafana"  # conformance/hops.py configmap_dashboards


def check(outcome: str, message: str = "") -> Check:
    return Check(area="configmap_dashboards", name="configmap dashboard appears in its folder", cluster="oke",
                 outcome=outcome, requirement="must", seconds=1.0, properties={}, message=message)


def titles(run: Run) -> list[str]:
    return [h.title for h in hops_for(run, "oke") if h.area == "configmap_dashboards"]


def test_a_stack_without_the_part_has_no_configmap_in_its_picture():
    run = Run(checks=[], properties=BASE)
    assert titles(run) == []
    assert ">ConfigMap</text>" not in picture.render(run)


@pytest.mark.parametrize("outcome, drawn", [("passed", "passed"), ("failed", "failed"), ("timed_out", "failed")])
def test_with_the_part_the_hop_is_drawn_in_the_colour_of_its_checks(outcome, drawn):
    run = Run(checks=[check(outcome, f"{HOP}: dashboard conformance-1 is in folder 'General'")],
              properties={**BASE, "part.configmap-dashboards": "on"})
    assert titles(run) == [HOP]
    svg = picture.render(run)
    assert f'<g class="hop {drawn}" data-hop="{HOP}"' in svg
    assert ">ConfigMap</text>" in svg
