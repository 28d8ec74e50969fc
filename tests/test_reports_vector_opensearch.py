"""The reports of a vector-opensearch run name its pipeline: Vector → OpenSearch where the Loki profiles say
Promtail/Alloy → Loki, and Grafana without a Loki datasource (issue 20 item 4)."""

from __future__ import annotations

from conformance.reports import html, picture, summary
from conformance.reports.hops import hops_for
from conformance.reports.model import Check, Run

BASE = {"clusters": "oke,workstation", "primary": "oke", "profile": "vector-opensearch"}
CANARY = "log canary reaches the primary opensearch"
# The logs suite's hop names on this profile (conformance/probes/logs/opensearch.py opensearch_hop): the failure names its hop first.
REMOTE_HOP = "remote workstation Vector → oke OpenSearch"
FAILURE = f"{REMOTE_HOP}: no canary line; Vector's opensearch sink: component_errors_total rose (http_request_failed)"


def check(name: str, cluster: str, outcome: str, message: str = "", area: str = "logs") -> Check:
    return Check(area=area, name=name, cluster=cluster, outcome=outcome, requirement="must", seconds=1.0,
                 properties={}, message=message)


def run_with_remote_failing() -> Run:
    return Run(checks=[check(CANARY, "oke", "passed"), check(CANARY, "workstation", "timed_out", FAILURE)],
               properties=BASE)


def test_the_logs_hops_are_vector_to_opensearch_and_grafana_has_no_loki_datasource():
    titles = {h.area: [] for h in hops_for(run_with_remote_failing(), "oke")}
    for h in hops_for(run_with_remote_failing(), "oke"):
        titles[h.area].append(h.title)
    assert titles["logs"] == ["oke Vector → oke OpenSearch", REMOTE_HOP]
    assert titles["dashboards"] == ["oke Grafana → its datasources (Prometheus)"]


def test_the_picture_draws_vector_and_opensearch_and_colours_the_failing_remote_hop():
    svg = picture.render(run_with_remote_failing())
    assert ">Vector</text>" in svg and ">OpenSearch</text>" in svg
    assert "Loki" not in svg and "Promtail" not in svg
    assert f'<g class="hop failed" data-hop="{REMOTE_HOP}"' in svg
    assert '<g class="hop passed" data-hop="oke Vector → oke OpenSearch"' in svg
    # Grafana's only datasource arrow: to Prometheus (the profile's log search is in OpenSearch Dashboards)
    assert svg.count('data-hop="oke Grafana → its datasources (Prometheus)"') == 1


def test_the_summary_and_page_name_the_broken_hop_as_the_suite_did():
    run = run_with_remote_failing()
    text, page = summary.render(run), html.render(run)
    assert f"{REMOTE_HOP}: no canary line" in text and "Loki" not in text
    assert f"{REMOTE_HOP}: no canary line" in page and "Promtail" not in page


def test_the_loki_profiles_keep_their_store():
    run = Run(checks=[], properties={**BASE, "profile": "alloy"})
    assert [h.title for h in hops_for(run, "oke") if h.area == "logs"] == [
        "oke Alloy → oke Loki", "remote workstation Alloy → oke Loki"]
    assert ">Loki</text>" in picture.render(run) and "OpenSearch" not in picture.render(run)
