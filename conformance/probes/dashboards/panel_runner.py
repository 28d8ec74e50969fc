"""Runs a dashboard's panel queries as Grafana runs them on load: variables resolved, built-in intervals set.

PromQL goes to the primary Prometheus as an instant query at now; LogQL to the primary Loki as a range query over
the dashboard's time range at the panel's step, as Grafana's Loki backend sends it. Shared by the dashboards
check and the configmap-dashboards check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from conformance.clients.loki import LokiClient
from conformance.core.http import APIError
from conformance.probes.dashboards.panels import LokiVariables, PrometheusVariables, builtins, panel_queries, runnable, step_s, time_range_s
from conformance.probes.dashboards.templating import resolve


@dataclass
class QueryRun:
    """What running one dashboard's queries found: how many ran, and each that failed or returned nothing."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)  # in the dashboard's order: each error and each empty answer
    errors: list[str] = field(default_factory=list)  # "dashboard / panel: error for expr", also in problems


def prometheus_scrape_interval(grafana) -> str:
    """The default Prometheus datasource's scrape interval (jsonData.timeInterval), which Grafana's intervals use."""
    sources = [d for d in grafana.datasources() if d.get("type") == "prometheus"]
    chosen = next((d for d in sources if d.get("isDefault")), sources[0] if sources else {})
    return str((chosen.get("jsonData") or {}).get("timeInterval") or "")


def logql_has_data(loki: LokiClient, expr: str, start: float, end: float, step: float) -> bool:
    """A range query over the dashboard's time range at the panel's step, as Grafana's Loki backend sends it."""
    params = {"query": expr, "start": str(int(start * 1e9)), "end": str(int(end * 1e9)), "step": f"{step:g}", "limit": "1"}
    return bool(loki.http.get_json("/loki/api/v1/query_range", params)["data"]["result"])


def run_dashboard(key: str, dashboard: dict, prometheus, loki: LokiClient | None, scrape: str,
                  excluded: set[tuple[str, str]] = frozenset()) -> QueryRun:
    """Every query of every panel of one dashboard; LogQL ones are left out when there is no Loki to ask."""
    sources = {"prometheus": PrometheusVariables(prometheus)} | ({"loki": LokiVariables(loki)} if loki else {})
    now, range_s = time.time(), time_range_s(dashboard)
    resolution = resolve((dashboard.get("templating") or {}).get("list") or [], sources, now - range_s, now,
                         builtins(range_s, "prometheus", scrape))
    run = QueryRun(problems=[f"{key}: {problem}" for problem in resolution.problems])
    for q in panel_queries(key, dashboard):
        if (q.dashboard, q.panel) in excluded or (q.datasource_type == "loki" and loki is None):
            continue
        run.checked += 1
        expr = runnable(q, resolution, range_s, scrape)
        try:
            if q.datasource_type == "loki":
                has_data = logql_has_data(loki, expr, now - range_s, now, step_s(q, range_s))
            else:
                has_data = bool(prometheus.query(expr, time=now))
        except APIError as e:
            run.errors.append(f"{q.dashboard} / {q.panel}: {e.headline} for {expr[:200]}")
            run.problems.append(run.errors[-1])
            continue
        if not has_data:
            run.problems.append(f"{q.dashboard} / {q.panel}: no data for {expr[:200]}")
    return run
