"""The report's picture grows the sidecars → Jaeger and Kiali → Jaeger hops only when the run's stack has tracing."""

from __future__ import annotations

from conformance.reports import picture
from conformance.reports.hops import hops_for
from conformance.reports.model import Check, Run

BASE = {"clusters": "oke,workstation", "primary": "oke"}


def check(cluster: str, outcome: str, message: str = "") -> Check:
    return Check(area="tracing", name="forced trace from the remote is one trace from both clusters", cluster=cluster,
                 outcome=outcome, requirement="must", seconds=1.0, properties={}, message=message)


def tracing_titles(run: Run) -> list[str]:
    return [h.title for h in hops_for(run, "oke") if h.area == "tracing"]


def test_a_stack_without_the_part_has_no_jaeger_in_its_picture():
    run = Run(checks=[], properties=BASE)
    assert tracing_titles(run) == []
    assert "Jaeger" not in picture.render(run)


def test_with_the_part_each_clusters_sidecars_and_kiali_have_their_hop_and_a_failure_colours_its_own():
    run = Run(checks=[check("oke", "passed"),
                      check("workstation", "timed_out", "workstation sidecars → oke Jaeger: no single trace")],
              properties={**BASE, "part.tracing": "on"})
    assert tracing_titles(run) == ["oke sidecars → oke Jaeger", "workstation sidecars → oke Jaeger", "oke Kiali → oke Jaeger"]
    svg = picture.render(run)
    assert '<g class="hop passed" data-hop="oke sidecars → oke Jaeger"' in svg
    assert '<g class="hop failed" data-hop="workstation sidecars → oke Jaeger"' in svg
    assert '<g class="hop passed" data-hop="oke Kiali → oke Jaeger"' in svg
    assert ">Jaeger</text>" in svg


def test_a_failure_naming_the_primarys_sidecars_colours_that_hop_not_the_remotes():
    run = Run(checks=[check("workstation", "timed_out", "oke sidecars → oke Jaeger: no sidecar's span")],
              properties={**BASE, "part.tracing": "on"})
    svg = picture.render(run)
    assert '<g class="hop failed" data-hop="oke sidecars → oke Jaeger"' in svg
    assert '<g class="hop unchecked" data-hop="workstation sidecars → oke Jaeger"' in svg
