"""dashboards: Grafana is healthy, every expected dashboard is provisioned in its folder, datasources work."""

from __future__ import annotations

import re
import time
from pathlib import PurePosixPath

import pytest

from conformance.access import ServiceAbsent
from conformance.clients.loki import LokiClient
from conformance.eventually import NotYet, Wait, eventually
from conformance.http import ServiceError
from conformance.outcomes import CheckFailure, Failed, PreconditionUnmet, Unobservable
from conformance.panel_runner import logql_has_data, prometheus_scrape_interval, run_dashboard  # noqa: F401
from conformance.panels import exclusions
from conformance.provision.dashboards import declared
from conformance.redact import redact

pytestmark = pytest.mark.dashboards

# The dashboard sidecar and file provider rescan every 10-30 s.
PROVISION_WAIT = Wait(timeout=90, delay=1, max_delay=5)
# Grafana's provisioning errors in its own log: error lines of a provisioning logger
# (logfmt since Grafana 8, lvl=eror before), and the duplicate-uid messages Grafana
# logs only as warnings although the duplicate dashboard never loads
# (docs/troubleshooting.md#dashboard-title-cannot-be-empty, docs/troubleshooting.md#duplicate-dashboard-uid).
# Also the warning a provider logs for every dashboard it refuses to save once duplicates restricted its
# database access (grafana/grafana pkg/services/provisioning/dashboards/file_reader.go saveDashboard).
PROVISIONING_ERROR = re.compile(
    r"logger=provisioning\S*.*(level=error|lvl=eror|the same UID is used more than once|same uid already exists"
    r"|Not saving new dashboard due to restricted database access)"
    r"|(level=error|lvl=eror).*logger=provisioning"
)
# Each provisioning pass (at start, and on every reload the dashboard sidecar asks for) begins with this line
# (pkg/services/provisioning/dashboards/dashboard.go Provision); what a pass before the last one logged has
# been superseded, so a start-up race that healed is not judged. The file readers' polls log between passes.
PASS_START = 'msg="starting to provision dashboards"'


def current_pass(lines: list[str]) -> list[str]:
    """The lines from the last provisioning pass on (all of them when no pass line is there)."""
    starts = [i for i, line in enumerate(lines) if PASS_START in line]
    return lines[starts[-1]:] if starts else lines


def grafana_hop(primary) -> str:
    return f"{primary.name} Grafana provisioning"


@pytest.mark.hop("grafana[{primary}]")  # Grafana unreachable: the other dashboards checks stop at once
@pytest.mark.requirement("must")
def test_grafana_is_healthy(primary, grafana, record_property):
    """Grafana's /api/health says its database is ok."""
    health = eventually(grafana.health, hop=f"conformance → {primary.name} Grafana", what="no health answer",
                        wait=Wait(timeout=30, delay=0.5, max_delay=2))
    record_property("grafana_version", health.get("version", ""))
    if health.get("database") != "ok":
        raise Failed(f"{primary.name} Grafana → its database", f"database is {health.get('database')!r}", str(health))


def provisioned_by_file(grafana, folders: set[str]) -> dict[str, dict]:
    """Provisioned dashboards in the given folders, by file name (the provisionedExternalId's base name)."""
    found = {}
    for hit in grafana.search("dash-db"):
        if hit.get("folderTitle", "General") not in folders:
            continue
        meta = grafana.dashboard(hit["uid"])["meta"]
        external = meta.get("provisionedExternalId") or ""
        if external:
            found[PurePosixPath(external).name] = {"uid": hit["uid"], "title": hit.get("title"), **meta}
    return found


def rejected_files(access, primary) -> dict[str, str]:
    """Dashboard files the current provisioning pass in Grafana's log rejected, with Grafana's error.

    Best effort: {} when there is no log source or it cannot be read (the log check reports that).
    """
    if not primary.has_kube and primary.grafana_log_file is None:
        return {}
    try:
        lines = current_pass(grafana_log(access, primary).splitlines())
    except (CheckFailure, ServiceError, Unobservable, OSError):
        return {}
    rejected = {}
    for line in lines:
        file = re.search(r'\bfile="?([^"\s]+)', line)
        if file and PROVISIONING_ERROR.search(line):
            error = re.search(r'error="([^"]*)"', line) or re.search(r'msg="([^"]*)"', line)
            rejected.setdefault(PurePosixPath(file.group(1)).name, error.group(1) if error else line)
    return rejected


@pytest.mark.hop(needs=["grafana[{primary}]"])
@pytest.mark.requirement("must")
def test_every_expected_dashboard_is_provisioned_in_its_folder(primary, grafana, access, record_property):
    """Each dashboard declared in the stack's Grafana values is present, provisioned, and in its folder."""
    expected = declared()
    folders = {d.folder for d in expected}

    def probe():
        found = provisioned_by_file(grafana, folders | {"General"})
        missing = [f"{d.key}.json" for d in expected if f"{d.key}.json" not in found]
        # A file the current pass rejected stays missing until the file changes (and a change starts a new pass).
        rejected = rejected_files(access, primary) if missing else {}
        refused = [f"{name}: {rejected[name]}" for name in missing if name in rejected]
        if refused:
            raise Failed(grafana_hop(primary), f"Grafana's provisioning rejected {refused[0]}"
                         + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""),
                         "\n".join(refused) + "\n(from the current provisioning pass of Grafana's log)")
        problems = []
        for d in expected:
            meta = found.get(f"{d.key}.json")
            if meta is None:
                problems.append(f"{d.key} (grafana.com {d.gnet_id}) is missing")
            elif not meta.get("provisioned"):
                problems.append(f"{d.key} is present but not provisioned")
            elif meta.get("folderTitle") != d.folder:
                problems.append(f"{d.key} is in folder {meta.get('folderTitle')!r}, expected {d.folder!r}")
        if problems:
            raise NotYet("; ".join(problems))
        return found

    found = eventually(probe, hop=grafana_hop(primary), what=f"not all of {len(expected)} dashboards provisioned",
                       wait=PROVISION_WAIT)
    record_property("dashboards_provisioned", len([d for d in expected if f"{d.key}.json" in found]))


def grafana_log(access, primary) -> str:
    """Grafana's own log: the pod's container log in kind/existing, the topology's grafana_log file otherwise."""
    if "grafana" in primary.absent:
        access.endpoint(primary, "grafana")  # not applicable: the topology declares the stack without Grafana
    if not primary.has_kube:
        if primary.grafana_log_file is None:
            pytest.skip(f"no log source for grafana on cluster {primary.name} (provider endpoints without grafana_log)")
        return primary.grafana_log_file.read_text(errors="replace")
    spec = access.service_spec(primary, "grafana")  # where Grafana was found (issue 18), else the bring-up's
    kube = access.kube(primary)
    core = kube.core()
    pods = kube.call("list Grafana pods", core.list_namespaced_pod, spec.namespace, label_selector=spec.pod_selector).items
    if not pods:
        raise PreconditionUnmet(f"conformance → {primary.name} Grafana", f"no pod matches {spec.pod_selector} in {spec.namespace}")
    return "\n".join(kube.call("read Grafana's log", core.read_namespaced_pod_log, pod.metadata.name, spec.namespace,
                               container=spec.container, since_seconds=_since_start(pod, spec.container))
                     for pod in pods)


def _since_start(pod, container: str | None) -> int:
    """Seconds since the Grafana container started (its whole current run), at least one."""
    status = next((c for c in pod.status.container_statuses or [] if c.name == container), None)
    started = status.state.running.started_at if status and status.state and status.state.running else None
    if started is None:
        return 24 * 3600
    return max(1, int(time.time() - started.timestamp()) + 60)


@pytest.mark.requirement("must")  # Grafana's own log says why its API does not answer: no hop it needs
def test_grafana_log_shows_no_provisioning_errors(primary, access, record_property):
    """The current provisioning pass of Grafana's log has no dashboard or datasource provisioning errors."""
    lines = current_pass(grafana_log(access, primary).splitlines())
    record_property("grafana_log_lines_judged", len(lines))
    errors = [line for line in lines if PROVISIONING_ERROR.search(line)]
    record_property("grafana_provisioning_errors", len(errors))
    if errors:
        first = re.search(r'error="([^"]*)"', errors[0]) or re.search(r'msg="([^"]*)"', errors[0])
        raise Failed(grafana_hop(primary), f"{len(errors)} provisioning errors in Grafana's log"
                     + (f", first: {first.group(1)}" if first else ""), redact("\n".join(errors[:10])))


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
def test_datasource_is_healthy(kind, primary, grafana, record_property):
    """The Prometheus and Loki datasources pass Grafana's own health check."""
    sources = [d for d in grafana.datasources() if d.get("type") == kind]
    if not sources:
        raise Failed(f"{primary.name} Grafana → {kind}", f"Grafana has no {kind} datasource")
    for source in sources:
        health = grafana.datasource_health(source["uid"])
        record_property(f"{source['uid']}_health", health.get("status", ""))
        if health.get("status") != "OK":
            raise Failed(f"{primary.name} Grafana → {kind} ({source['name']}, {source.get('url', '')})",
                         f"health check says {health.get('status')}: {health.get('message')}",
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
    found = provisioned_by_file(grafana, {d.folder for d in declared()} | {"General"})
    empty, checked = [], 0
    for key in sorted({d.key for d in declared()}):
        meta = found.get(f"{key}.json")
        if meta is None:
            continue  # the provisioning check reports missing dashboards
        run = run_dashboard(key, grafana.dashboard(meta["uid"])["dashboard"], primary_prometheus, loki, scrape, excluded)
        checked += run.checked
        empty += run.problems
    record_property("panel_queries_checked", checked)
    record_property("panel_queries_empty", len(empty))
    if empty:
        raise Failed(f"{primary.name} dashboards → datasources", f"{len(empty)} of {checked} panel queries return no data",
                     "\n".join(empty[:40]) + "\n(add justified entries to stack/dashboard-exclusions.yaml)")
