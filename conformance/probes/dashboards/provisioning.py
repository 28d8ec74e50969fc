"""What the provisioning check judges: per declared dashboard, what Grafana's API shows wrong and what its log's last
pass made final; on a user's stack, what its providers provision (conformance/probes/dashboards/intent.py)."""

from __future__ import annotations

from conformance.core import timing
from conformance.core.eventually import NotYet, eventually
from conformance.probes.dashboards.declared import Dashboard, declared
from conformance.probes.dashboards.grafana_log import ProvisioningPass
from conformance.probes.dashboards.intent import LISTED, PROJECT, SEARCH, Intent, dashboards_intent, listed, provisioned_dashboards
from conformance.probes.dashboards.match import Match


# The dashboard sidecar and file provider rescan every 10-30 s; this wait is for a pass still under way, or for a
# Grafana whose log cannot be read: a pass that has completed decides at once (see test_every_expected_dashboard_...).
PROVISION_WAIT = timing.dashboards_provisioned()


def grafana_hop(primary) -> str:
    return f"{primary.name} Grafana provisioning"


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
