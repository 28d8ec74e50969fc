"""Panel queries from dashboard JSON, made runnable: what the dashboards check sends to the datasources."""

from __future__ import annotations

import pytest

from conformance.panels import exclusions, panel_queries, runnable


@pytest.mark.parametrize("expr,expected", [
    # Range variables become a fixed window that every scrape interval fits in.
    ('rate(istio_requests_total[$__rate_interval])', 'rate(istio_requests_total[5m])'),
    ('rate(x[${__interval}])', 'rate(x[5m])'),
    # A matcher on a variable matches anything, whatever operator the dashboard used.
    ('up{job="$job", instance=~"$node:$port"}', 'up{job=~".*", instance=~".*"}'),
    ('sum(x{namespace=~"[[namespace]]"})', 'sum(x{namespace=~".*"})'),
    ('x{cluster!="$cluster"}', 'x{cluster=~".*"}'),
    # Literal matchers stay as they are.
    ('up{job="kubelet"}', 'up{job="kubelet"}'),
])
def test_runnable_substitutes_template_variables(expr, expected):
    assert runnable(expr) == expected


def test_loki_selectors_get_a_matcher_that_cannot_match_empty():
    # Loki refuses {cluster=~".*"}: a selector needs a matcher that does not match "" (Loki >= 2.3).
    assert runnable('{cluster="$cluster", app=~"$app"} |= "error"', "loki") == '{cluster=~".+", app=~".+"} |= "error"'


def test_panel_queries_walk_rows_skip_hidden_targets_and_tell_loki_from_prometheus():
    dashboard = {"panels": [
        {"title": "Requests", "targets": [{"expr": "sum(rate(x[5m]))"}, {"expr": "y", "hide": True}]},
        {"type": "row", "title": "Logs", "panels": [
            {"title": "Errors", "datasource": {"type": "loki", "uid": "loki"}, "targets": [{"expr": '{app="a"} |= "err"'}]},
            {"title": "Text", "type": "text"},
        ]},
    ]}
    queries = panel_queries("istio-mesh", dashboard)
    assert [(q.panel, q.datasource_type) for q in queries] == [("Requests", "prometheus"), ("Errors", "loki")]
    assert all(q.dashboard == "istio-mesh" for q in queries)


def test_exclusions_need_a_reason_each(tmp_path):
    path = tmp_path / "exclusions.yaml"
    path.write_text("exclusions:\n  - {dashboard: istio-workload, panel: TCP Server Traffic, reason: HTTP-only sample app}\n")
    [entry] = exclusions(path)
    assert entry.reason == "HTTP-only sample app"
    path.write_text("exclusions:\n  - {dashboard: istio-workload, panel: TCP Server Traffic}\n")
    with pytest.raises(TypeError):
        exclusions(path)  # an entry without its reason is refused


def test_the_shipped_exclusion_list_loads():
    assert exclusions() == []
