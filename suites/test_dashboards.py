"""dashboards: Grafana is healthy, every expected dashboard is provisioned in its folder, datasources work."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from conformance.core.access import ServiceAbsent
from conformance.clients.loki import LokiClient
from conformance.core import timing
from conformance.core.eventually import NotYet, eventually
from conformance.core.http import ServiceError
from conformance.core.outcomes import CheckFailure, Failed, NotApplicable, Unobservable
from conformance.probes.dashboards.panel_runner import logql_has_data, prometheus_scrape_interval, run_dashboard  # noqa: F401
from conformance.probes.dashboards.panels import exclusions
from conformance.probes.dashboards.grafana_log import ProvisioningPass, datasource_cause, last_pass, line_cause, log_field, specific_part
from conformance.probes.dashboards.match import Match, match_dashboards
from conformance.probes.dashboards.intent import LISTED, PROJECT, SEARCH, Intent, dashboards_intent, listed, provisioned_dashboards
from conformance.probes.dashboards.declared import Dashboard, declared
from conformance.core.profiles import foreign_services
from conformance.core.providers import LogUnavailable, provider_of
from conformance.core.redact import redact

pytestmark = pytest.mark.dashboards

# The dashboard sidecar and file provider rescan every 10-30 s; this wait is for a pass still under way, or for a
# Grafana whose log cannot be read: a pass that has completed decides at once (see test_every_expected_dashboard_...).
PROVISION_WAIT = timing.dashboards_provisioned()


def grafana_hop(primary) -> str:
    return f"{primary.name} Grafana provisioning"


@pytest.mark.hop("grafana[{primary}]")  # Grafana unreachable: the other dashboards checks stop at once
@pytest.mark.requirement("must")
def test_grafana_is_healthy(primary, grafana, record_property):
    """Grafana's /api/health says its database is ok."""
    health = eventually(grafana.health, hop=f"conformance → {primary.name} Grafana", what="no health answer",
                        wait=timing.ready())
    record_property("grafana_version", health.get("version", ""))
    if health.get("database") != "ok":
        raise Failed(f"{primary.name} Grafana → its database", f"database is {health.get('database')!r}", str(health))


def read_pass(access, primary) -> ProvisioningPass | None:
    """The last provisioning pass of Grafana's log; None when there is no log source or it cannot be read."""
    try:
        return last_pass(grafana_log(access, primary).splitlines())
    except (CheckFailure, ServiceError, Unobservable, OSError):
        return None


def named(d: Dashboard) -> str:
    """How a headline names a declared dashboard: its key and the file Grafana reads."""
    return f"dashboard {d.key} (file {d.path})"


def log_problems(expected: list[Dashboard], matches: dict[str, Match], run: ProvisioningPass) -> dict[str, str]:
    """Final problems the pass logged, by dashboard key: its file rejected, its uid in more than one file."""
    problems = {}
    for d in expected:
        if d.file in run.rejected and d.key not in matches:
            path, cause = run.rejected[d.file]
            problems[d.key] = f"Grafana's provisioning rejected {d.file}: {cause} (dashboard {d.key}, file {path})"
    for uid, providers in run.duplicate_uids.items():
        d = next((d for d in expected if uid in (d.uid, matches[d.key].uid if d.key in matches else None)), None)
        if d is not None:
            problems.setdefault(d.key, f"{named(d)}: its uid {uid} is used by more than one file (providers {providers}); "
                                       "which one Grafana keeps is not certain, and the providers involved stop saving "
                                       "changes (docs/troubleshooting.md#duplicate-dashboard-uid)")
    return problems


def api_problems(expected: list[Dashboard], matches: dict[str, Match]) -> dict[str, str]:
    """What the API shows wrong, by dashboard key: missing, not provisioned, or in another folder."""
    problems = {}
    for d in expected:
        m = matches.get(d.key)
        if m is None:
            problems[d.key] = f"{named(d)} is missing (grafana.com {d.gnet_id})"
        elif not m.meta.get("provisioned"):
            problems[d.key] = f"{named(d)} is present but not provisioned"
        elif m.meta.get("folderTitle", "General") != d.folder_title:
            problems[d.key] = f"{named(d)} is in folder {m.meta.get('folderTitle')!r}, expected {d.folder_title!r}"
    return problems


def headline(problems: list[str], completed: bool) -> str:
    """The first problem, what made it final, and how many more there are."""
    first = problems[0]
    if completed and " is missing" in first:
        first = first.replace(" is missing", " is missing: Grafana's provisioning pass completed without it", 1)
    return first + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")


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


def providers_provision_dashboards(primary, grafana, intent: Intent, record_property) -> None:
    """On a user's stack the expectation is what its providers provision (at least one dashboard), or the topology's
    `dashboards:` list, each of them provisioned (waiting for a pass under way); the panels check runs their queries."""

    def probe():
        found = provisioned_dashboards(grafana)
        if intent.source == LISTED:
            found, missing = listed(found, intent.names)
            if missing:
                raise NotYet(f"no provisioned dashboard with the uid or title {', '.join(missing)}")
        if not found:
            raise NotYet(f"no dashboard of {SEARCH} is provisioned")
        return found

    def diagnose() -> str:
        hits = grafana.search("dash-db")
        if intent.source == LISTED:
            _, missing = listed(provisioned_dashboards(grafana), intent.names)
            present = sorted(n for n in missing if any(n in (h.get("uid"), h.get("title")) for h in hits))
            return (f"Grafana's providers provision no dashboard with the uid or title {', '.join(missing)}"
                    + (f" ({', '.join(present)} present but not provisioned)" if present else "")
                    + f"; {len(hits)} dashboards in {SEARCH} (expectation: {intent.describe()})")
        return (f"Grafana's providers provision no dashboard: {len(hits)} dashboards in {SEARCH}, none with "
                f"meta.provisioned or meta.provisionedExternalId (expectation: {intent.describe()})")

    what = "a listed dashboard not provisioned" if intent.source == LISTED else "no provisioned dashboard"
    found = eventually(probe, hop=grafana_hop(primary), what=what, wait=PROVISION_WAIT, diagnose=diagnose)
    record_property("dashboards_provisioned", len(found))
    record_property("dashboards_matched_by", "; ".join(f"{d.key}: provisioned {d.path or '(no file named)'}"
                                                       for d in found))


def expected_dashboards(access, primary, grafana) -> list:
    """The dashboards the panels check runs: the project's own, those Grafana's providers provision, or the topology's
    list of them (see intent)."""
    intent = dashboards_intent(access, primary)
    if intent.source == PROJECT:
        return declared(profile=access.topology.profile)
    found = provisioned_dashboards(grafana)
    return listed(found, intent.names)[0] if intent.source == LISTED else found


def grafana_log(access, primary) -> str:
    """Grafana's own log, wherever the primary's provider has it (its pods, or the topology's grafana_log file)."""
    if "grafana" in primary.absent:
        access.endpoint(primary, "grafana")  # not applicable: the topology declares the stack without Grafana
    return provider_of(access, primary).service_log("grafana")


def whose(line: str, expected: list[Dashboard]) -> str:
    """The declared dashboard and file a provisioning error line is about, as ' (dashboard ..., file ...)', or ''."""
    path, uid = log_field(line, "file"), log_field(line, "uid")
    d = next((d for d in expected if (path and PurePosixPath(path).name == d.file) or (uid and uid == d.uid)), None)
    if d is not None:
        return f" (dashboard {d.key}, file {path or d.path}" + (f", uid {uid})" if uid else ")")
    return f" (file {path})" if path else (f" (uid {uid}, no declared dashboard has it)" if uid else "")


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


def health_cause(health: dict, source: dict, access, primary) -> str:
    """The health answer's message when it names a cause; when it is generic, the error Grafana logged for the source."""
    message = str(health.get("message") or "")
    if specific_part(message):
        return message
    try:
        cause = datasource_cause(grafana_log(access, primary).splitlines(), source["uid"], source["name"])
    except LogUnavailable:
        return f"{message} (generic; no Grafana log source to find the cause in)"
    except (CheckFailure, ServiceError, Unobservable, OSError) as e:
        return f"{message} (generic; Grafana's log could not be read: {e})"
    return f"{cause} (from Grafana's log; the health answer says only: {message})" if cause else \
        f"{message} (generic; Grafana's log names no error for {source['name']})"


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
