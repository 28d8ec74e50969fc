"""configmap-dashboards (optional part): a labelled ConfigMap the suite creates becomes a Grafana dashboard in its
folder, its panels' queries run, and it goes away with the ConfigMap."""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from conformance.core.access import ServiceAbsent
from conformance.clients.loki import LokiClient
from conformance.probes.configmap_dashboards.sidecar import (
    PROVIDER_KEY, SIDECAR_CONTAINER, DashboardConfigMap, RemovalPace, SidecarEnv, folder_expected_by, new_dashboard,
    removal_pace, sidecar_env, sidecar_provider, sidecar_spec, why_not_selected,
)
from conformance.core import timing
from conformance.core.eventually import NotYet, eventually
from conformance.core.hops import hop
from conformance.core.http import APIError, ServiceError
from conformance.core.outcomes import CheckFailure, Failed, PreconditionUnmet
from conformance.probes.dashboards.panel_runner import prometheus_scrape_interval, run_dashboard
from conformance.core.stack import StackService

pytestmark = [pytest.mark.configmap_dashboards, pytest.mark.part("configmap-dashboards")]

# The sidecar (METHOD WATCH) writes the file when the API server sends the event and asks Grafana to reload at
# once (REQ_URL); without that request Grafana's provider rescans every updateIntervalSeconds (30, the chart's
# default). Three rescans cover a watch that was reconnecting (WATCH_SERVER_TIMEOUT 60 s) when the change came.
PROVISION_WAIT = timing.dashboards_provisioned()


def find(grafana, uid: str, title: str) -> dict | None:
    """The dashboard's /api/search hit, or None."""
    return next((h for h in grafana.search("dash-db", query=title) if h.get("uid") == uid), None)


@pytest.fixture(scope="module")
def made(primary, access) -> Iterator[DashboardConfigMap]:
    """This run's ConfigMap dashboard on the primary; deleted with its namespace whatever the checks found."""
    try:
        kube = access.kube(primary)
    except ServiceAbsent as e:
        raise type(e)(f"the check creates a ConfigMap: {e}") from None
    cm = DashboardConfigMap(kube, new_dashboard(primary.name), sidecar_spec())
    cm.grafana = access.service_spec(primary, "grafana")  # where Grafana was found (issue 18), else the bring-up's
    try:
        cm.create()
        yield cm
    finally:
        cm.cleanup()


def grafana_pod(kube, spec: StackService) -> dict | None:
    core = kube.core()
    pods = kube.call("list Grafana pods", core.list_namespaced_pod, spec.namespace, label_selector=spec.pod_selector).items
    return core.api_client.sanitize_for_serialization(pods[0]) if pods else None


def the_sidecar(kube, spec: StackService) -> SidecarEnv:
    pod = grafana_pod(kube, spec)
    if pod is None:
        raise PreconditionUnmet(f"conformance → {kube.cluster.name} Grafana", f"no pod matches {spec.pod_selector} in {spec.namespace}")
    return sidecar_env(pod["spec"])


def the_provider(kube, grafana: StackService) -> dict | None:
    """Grafana's sidecar provider as the chart rendered it (ConfigMap <grafana>-config-dashboards); None when unreadable."""
    try:
        cm = kube.call("read Grafana's dashboard provider", kube.core().read_namespaced_config_map,
                       f"{grafana.service}-config-dashboards", grafana.namespace, _request_timeout=10)
    except ServiceError:
        return None
    return sidecar_provider((cm.data or {}).get(PROVIDER_KEY, ""))


def sidecar_log_text(kube, spec: StackService, lines: int = 8) -> str:
    """The sidecar's last log lines, best effort ("" when they cannot be read)."""
    pod = grafana_pod(kube, spec)
    if pod is None:
        return ""
    try:
        return kube.call("read the sidecar's log", kube.core().read_namespaced_pod_log, pod["metadata"]["name"],
                         pod["metadata"]["namespace"], container=SIDECAR_CONTAINER, tail_lines=lines, _request_timeout=10)
    except ServiceError:
        return ""


def sidecar_log(kube, spec: StackService, lines: int = 8) -> str:
    """The sidecar's last log lines as a clause of a diagnosis, best effort."""
    text = sidecar_log_text(kube, spec, lines)
    return "; its log ends: " + " | ".join(text.strip().splitlines()[-lines:]) if text.strip() else "; its log is empty"


def sidecar_refused(kube, spec: StackService) -> str | None:
    """Why the sidecar will never write the file: the API server refuses its ConfigMap requests (403), or None.

    k8s-sidecar 2.10.1 logs "ApiException when calling kubernetes: (403)" and repeats the same list/watch with the
    same ServiceAccount: only new RBAC makes it pass."""
    refused = [line for line in sidecar_log_text(kube, spec, 20).splitlines() if "(403)" in line]
    if not refused:
        return None
    return ("the API server refuses the sidecar's ConfigMap requests (403): its ServiceAccount may not list and watch "
            "configmaps (the grafana chart's rbac.create, rbac.namespaced), and it repeats the same request, so waiting "
            f"will not help; its log: {refused[-1].strip()[:300]}")


def wait_provisioned(made: DashboardConfigMap, grafana, name: str) -> dict:
    """The dashboard's search hit once Grafana has it; at once Failed when the sidecar's env cannot select the ConfigMap."""
    try:
        return _wait_provisioned(made, grafana, name)
    except CheckFailure as e:
        made.not_provisioned = e.headline
        raise


def _wait_provisioned(made: DashboardConfigMap, grafana, name: str) -> dict:
    dash, kube = made.dash, made.kube
    why = why_not_selected(the_sidecar(kube, made.grafana), dash, made.spec)
    if why:
        raise Failed(name, f"ConfigMap {dash.namespace}/{dash.name} is never provisioned: {why}")

    def probe():
        hit = find(grafana, dash.uid, dash.title)
        if hit is None:
            if why := sidecar_refused(kube, made.grafana):
                raise Failed(name, f"ConfigMap {dash.namespace}/{dash.name} is never provisioned: {why}")
            raise NotYet(f"no dashboard uid {dash.uid} in Grafana's /api/search")
        return hit

    return eventually(probe, hop=name, what=f"no dashboard from ConfigMap {dash.namespace}/{dash.name}",
                      wait=PROVISION_WAIT,
                      diagnose=lambda: f"the sidecar's env selects the ConfigMap (label {made.spec.label}="
                                       f"{made.spec.label_value}, namespace {dash.namespace}), so it did not write the "
                                       f"file or Grafana did not read it" + sidecar_log(kube, made.grafana))


def provisioned_or_precondition(made: DashboardConfigMap, grafana, name: str) -> dict:
    """The dashboard's hit; PreconditionUnmet (at once when an earlier check waited in vain) when it is not there."""
    if made.not_provisioned:
        raise PreconditionUnmet(name, f"the ConfigMap dashboard is not in Grafana ({made.not_provisioned})")
    try:
        return wait_provisioned(made, grafana, name)
    except CheckFailure as e:
        raise PreconditionUnmet(name, f"the ConfigMap dashboard is not in Grafana ({e.headline})") from None


@pytest.mark.writes
@pytest.mark.requirement("must")
def test_configmap_dashboard_appears_in_its_folder(primary, grafana, made, record_property):
    """A ConfigMap labelled for the sidecar, in a namespace of the suite's, is a provisioned dashboard in the folder
    its annotation names."""
    name = hop("configmap_dashboards", primary, primary)
    started = time.monotonic()
    hit = wait_provisioned(made, grafana, name)
    record_property("configmap_dashboard_wait_seconds", round(time.monotonic() - started, 2))
    folder = hit.get("folderTitle") or "General"
    record_property("configmap_dashboard_folder", folder)
    if folder != made.dash.folder:
        why = folder_expected_by(the_sidecar(made.kube, made.grafana), the_provider(made.kube, made.grafana), made.spec)
        raise Failed(name, f"dashboard {made.dash.uid} is in folder {folder!r}, expected {made.dash.folder!r} "
                           f"(annotation {made.spec.folder_annotation}: {made.dash.folder})" + (f": {why}" if why else ""))
    meta = grafana.dashboard(made.dash.uid)["meta"]
    record_property("configmap_dashboard_file", meta.get("provisionedExternalId", ""))
    if not meta.get("provisioned"):
        raise Failed(name, f"dashboard {made.dash.uid} is in Grafana but not provisioned (meta.provisioned false)")


@pytest.mark.writes
@pytest.mark.requirement("must")
def test_configmap_dashboard_panel_queries_run(primary, grafana, primary_prometheus, access, made, record_property):
    """Every panel query of the ConfigMap dashboard, as Grafana serves it, runs without error and returns data."""
    name = hop("configmap_panels", primary, primary)
    provisioned_or_precondition(made, grafana, hop("configmap_dashboards", primary, primary))
    try:
        loki = LokiClient(access.endpoint(primary, "loki").http)
    except ServiceAbsent:
        loki = None
    dashboard = grafana.dashboard(made.dash.uid)["dashboard"]
    run = run_dashboard(made.dash.name, dashboard, primary_prometheus, loki, prometheus_scrape_interval(grafana))
    record_property("panel_queries_checked", run.checked)
    if run.errors:
        raise Failed(name, f"{len(run.errors)} of {run.checked} panel queries fail: {run.errors[0]}", "\n".join(run.errors))
    if run.problems:
        raise Failed(name, f"{len(run.problems)} of {run.checked} panel queries return no data: {run.problems[0]}",
                     "\n".join(run.problems))


def the_removal_pace(made: DashboardConfigMap) -> RemovalPace | None:
    """How soon the dashboard should go, from the sidecar's env and Grafana's provider; None when unreadable."""
    try:
        env = the_sidecar(made.kube, made.grafana)
    except (CheckFailure, ServiceError):
        return None
    return removal_pace(env, the_provider(made.kube, made.grafana))


@pytest.mark.writes
@pytest.mark.requirement("must")
def test_configmap_dashboard_disappears_when_the_configmap_is_deleted(primary, grafana, made, record_property):
    """Deleting the ConfigMap removes the dashboard from Grafana (the sidecar removes the file, Grafana the dashboard)."""
    name = hop("configmap_dashboards", primary, primary)
    provisioned_or_precondition(made, grafana, name)
    dash = made.dash
    pace = the_removal_pace(made)
    made.delete()
    started = time.monotonic()

    def probe():
        if find(grafana, dash.uid, dash.title) is None:
            return True
        try:
            meta = grafana.dashboard(dash.uid)["meta"]
        except APIError as e:
            if e.status == 404:  # deleted between the search and this read
                return True
            raise
        if not meta.get("provisioned"):
            provider = the_provider(made.kube, made.grafana) or {}
            raise Failed(name, f"dashboard {dash.uid} stayed after ConfigMap {dash.namespace}/{dash.name} was deleted, "
                               "no longer provisioned: Grafana keeps a dashboard whose file is gone when its provider has "
                               f"disableDeletion (provider {provider.get('name', 'sidecarProvider')} disableDeletion: "
                               f"{provider.get('disableDeletion', '?')}; grafana.sidecar.dashboards.provider.disableDelete)")
        raise NotYet(f"dashboard {dash.uid} still provisioned from {meta.get('provisionedExternalId')}")

    eventually(probe, hop=name, what=f"dashboard {dash.uid} still in Grafana after its ConfigMap was deleted",
               wait=PROVISION_WAIT if pace is None else timing.dashboard_removed(pace.sidecar_delay, pace.rescan),
               diagnose=lambda: "the sidecar has not removed the file (k8s-sidecar removes it on the DELETED event)"
                                + (f"; {pace.why}: past that, the file stays (the sidecar does not replay a deletion "
                                   "it missed, e.g. while its watch reconnected)" if pace else "")
                                + sidecar_log(made.kube, made.grafana))
    record_property("configmap_dashboard_removal_seconds", round(time.monotonic() - started, 2))
