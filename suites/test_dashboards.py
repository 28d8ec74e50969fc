"""dashboards: Grafana is healthy, every expected dashboard is provisioned in its folder, datasources work."""

from __future__ import annotations

import pytest

from conformance.core.access import ServiceAbsent
from conformance.clients.loki import LokiClient
from conformance.core import timing
from conformance.core.eventually import NotYet, eventually
from conformance.core.outcomes import Failed, NotApplicable
from conformance.probes.dashboards.panel_runner import prometheus_scrape_interval, run_dashboard
from conformance.probes.dashboards.panels import exclusions
from conformance.probes.dashboards.grafana_log import last_pass, line_cause
from conformance.probes.dashboards.log_reading import grafana_log, health_cause, read_pass, whose
from conformance.probes.dashboards.match import match_dashboards
from conformance.probes.dashboards.intent import PROJECT, dashboards_intent
from conformance.probes.dashboards.declared import declared
from conformance.probes.dashboards.provisioning import (
    PROVISION_WAIT, api_problems, expected_dashboards, grafana_hop, headline, log_problems, providers_provision_dashboards,
)
from conformance.core.profiles import foreign_services
from conformance.core.redact import redact

pytestmark = pytest.mark.dashboards


@pytest.mark.hop("grafana[{primary}]")  # Grafana unreachable: the other dashboards checks stop at once
@pytest.mark.requirement("must")
def test_grafana_is_healthy(primary, grafana, record_property):
    """Grafana's /api/health says its database is ok."""
    health = eventually(grafana.health, hop=f"conformance → {primary.name} Grafana", what="no health answer",
                        wait=timing.ready())
    record_property("grafana_version", health.get("version", ""))
    if health.get("database") != "ok":
        raise Failed(f"{primary.name} Grafana → its database", f"database is {health.get('database')!r}", str(health))


@pytest.mark.hop(needs=["grafana[{primary}]"])
@pytest.mark.requirement("must")
def test_every_expected_dashboard_is_provisioned_in_its_folder(primary, grafana, access, record_property):
    """Each dashboard declared in the stack's Grafana values is present, provisioned, and in its folder.

    Matched by uid, then by title in its folder, then by file (the report says which); final at once when Grafana's log
    shows the file rejected, its uid duplicated, or a completed provisioning pass without it; waits otherwise.
    """
    intent = dashboards_intent(access, primary)
    record_property("dashboards_expectation", intent.describe())
    if intent.source != PROJECT:
        return providers_provision_dashboards(primary, grafana, intent, record_property)
    expected = declared(profile=access.topology.profile)

    def probe():
        before = read_pass(access, primary)  # read before the API: a pass completed here is over when the API answers
        matches = match_dashboards(grafana, expected)
        final = log_problems(expected, matches, before) if before else {}
        problems = list({**api_problems(expected, matches), **final}.values())
        problems.sort(key=lambda p: p not in final.values())  # the logged causes first
        if not problems:
            return matches
        after = read_pass(access, primary) if not final and before and before.completed else None
        settled = bool(after and after.completed and after.starts == before.starts)  # no new pass began meanwhile
        if final or settled:
            raise Failed(grafana_hop(primary), headline(problems, settled),
                         "\n".join(problems) + "\n(from the API and the last provisioning pass of Grafana's log)")
        raise NotYet("; ".join(problems))

    matches = eventually(probe, hop=grafana_hop(primary), what=f"not all of {len(expected)} dashboards provisioned",
                         wait=PROVISION_WAIT)
    record_property("dashboards_provisioned", len(matches))
    record_property("dashboards_matched_by", "; ".join(f"{key}: {m.by}" for key, m in sorted(matches.items())))


@pytest.mark.requirement("must")  # Grafana's own log says why its API does not answer: no hop it needs
def test_grafana_log_shows_no_provisioning_errors(primary, access, record_property):
    """The current provisioning pass of Grafana's log has no dashboard or datasource provisioning errors."""
    run = last_pass(grafana_log(access, primary).splitlines())
    record_property("grafana_log_lines_judged", len(run.lines))
    errors = run.errors
    record_property("grafana_provisioning_errors", len(errors))
    if errors:
        raise Failed(grafana_hop(primary), f"{len(errors)} provisioning errors in Grafana's log, first: "
                     f"{line_cause(errors[0])}{whose(errors[0], declared(profile=access.topology.profile))}",
                     redact("\n".join(errors[:10])))


@pytest.mark.hop(needs=["grafana[{primary}]"])
@pytest.mark.requirement("must")
def test_exactly_one_default_datasource(primary, grafana):
    """Exactly one datasource is the default (two make Grafana refuse to start).

    See docs/troubleshooting.md#datasource-unhealthy-or-two-defaults.
    """
    defaults = [d["name"] for d in grafana.datasources() if d.get("isDefault")]
    if len(defaults) != 1:
        raise Failed(f"{primary.name} Grafana → datasources", f"{len(defaults)} default datasources: {defaults or 'none'}")


@pytest.mark.hop(needs=["grafana[{primary}]"])
@pytest.mark.requirement("must")
@pytest.mark.parametrize("kind", ["prometheus", "loki"])
def test_datasource_is_healthy(kind, primary, grafana, access, record_property):
    """The Prometheus and Loki datasources pass Grafana's own health check."""
    if kind == "loki" and "loki" in foreign_services(access.topology.profile):
        raise NotApplicable(f"profile {access.topology.profile}: no Loki; its log search lives in OpenSearch Dashboards, "
                            f"and Grafana has no log datasource (stack/values/kube-prometheus-stack-vector-opensearch.yaml)")
    sources = [d for d in grafana.datasources() if d.get("type") == kind]
    if not sources:
        raise Failed(f"{primary.name} Grafana → {kind}", f"Grafana has no {kind} datasource")
    for source in sources:
        health = grafana.datasource_health(source["uid"])
        record_property(f"{source['uid']}_health", health.get("status", ""))
        if health.get("status") != "OK":
            raise Failed(f"{primary.name} Grafana → {kind} ({source['name']}, {source.get('url', '')})",
                         f"health check says {health.get('status')}: {health_cause(health, source, access, primary)}",
                         "a Loki that rejects vector(1)+vector(1) is the 2.6.1 image loki-stack ships; set loki.image.tag: 2.9.3"
                         if kind == "loki" else "")


@pytest.mark.hop(needs=["grafana[{primary}]"])
@pytest.mark.requirement("should")
def test_every_panel_query_returns_data(primary, grafana, primary_prometheus, access, record_property):
    """Every query of every panel of every expected dashboard returns data, except the justified exclusions.

    Each query is run as Grafana runs it when the dashboard loads: variables at their load-time values
    (query variables asked of the datasource), built-in intervals from the dashboard's time range.
    """
    try:
        loki = LokiClient(access.endpoint(primary, "loki").http)
    except ServiceAbsent:
        loki = None  # LogQL panels cannot be run; the PromQL ones still are
    scrape = prometheus_scrape_interval(grafana)
    excluded = {(e.dashboard, e.panel) for e in exclusions()}
    expected = expected_dashboards(access, primary, grafana)
    record_property("dashboards_expectation", dashboards_intent(access, primary).describe())
    found = match_dashboards(grafana, expected)
    empty, checked = [], 0
    for key in sorted({d.key for d in expected}):
        if key not in found:
            continue  # the provisioning check reports missing dashboards
        run = run_dashboard(key, grafana.dashboard(found[key].uid)["dashboard"], primary_prometheus, loki, scrape, excluded)
        checked += run.checked
        empty += run.problems
    record_property("panel_queries_checked", checked)
    record_property("panel_queries_empty", len(empty))
    if empty:
        raise Failed(f"{primary.name} dashboards → datasources", f"{len(empty)} of {checked} panel queries return no data",
                     "\n".join(empty[:40]) + "\n(add justified entries to stack/dashboard-exclusions.yaml)")
