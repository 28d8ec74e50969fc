"""The configmap-dashboards suite against the fake API server, FakeGrafana's file provider and the fake sidecar:
healthy, and each fault the part can have."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.fakes.dashboard_sidecar import SidecarConfig
from tests.proving_configmap_dashboards import DashboardsGround, part_sidecar_config, start_dashboards_ground
from tests.proving_ground import PrometheusPair
from tests.proving_stack import GRAFANA_PASSWORD
from tests.suite_runner import run_suites

APPEARS = "suites.test_configmap_dashboards::test_configmap_dashboard_appears_in_its_folder"
PANELS = "suites.test_configmap_dashboards::test_configmap_dashboard_panel_queries_run"
GONE = "suites.test_configmap_dashboards::test_configmap_dashboard_disappears_when_the_configmap_is_deleted"
HOP = "oke ConfigMap → Grafana sidecar → oke Grafana"
NAMESPACE = "conformance-dashboards"


def run(ground: DashboardsGround, *args: str):
    return run_suites(ground.stack.folder, "--topology", str(ground.topology()), "-m", "configmap_dashboards", *args)


def leftovers(ground: DashboardsGround) -> list[str]:
    """ConfigMaps of the check still in the API server, and files still in the sidecar's folder."""
    api = ground.stack.apis["oke"]
    cms = [k for k in api._objects.get("configmaps", {}) if k[0] == NAMESPACE]
    return [str(k) for k in cms] + [str(p) for p in ground.provider.path.rglob("*.json")]


@pytest.fixture
def ground(tmp_path: Path, prometheus_pair: PrometheusPair):
    with start_dashboards_ground(tmp_path / "ground", prometheus_pair) as g:
        yield g


def test_a_configmap_dashboard_appears_in_its_folder_runs_its_queries_and_goes_away(ground):
    result = run(ground)
    assert result.code == 0, result.output
    appears = result.properties(APPEARS)
    assert appears["outcome"] == "passed"
    assert appears["configmap_dashboard_folder"] == "Conformance"
    # The sidecar wrote it to FOLDER/<annotation>/<key>; Grafana names the file relative to its provider's path.
    assert appears["configmap_dashboard_file"].startswith("Conformance/conformance-dashboard-")
    assert result.properties(PANELS)["panel_queries_checked"] == "2"
    assert result.properties(GONE)["outcome"] == "passed"
    assert ground.stack.grafana.reloads >= 2  # one reload for the file written, one for the file removed
    assert leftovers(ground) == []  # the ConfigMap is gone, and with it the file
    assert not ground.sidecar.errors
    assert GRAFANA_PASSWORD not in result.output and GRAFANA_PASSWORD not in result.junit.read_text()


def test_a_stack_without_the_part_skips_the_checks_and_writes_nothing(ground):
    path = ground.stack.topology()
    result = run_suites(ground.stack.folder, "--topology", str(path), "-m", "configmap_dashboards", "-rs")
    assert result.code == 5, result.output  # nothing else was selected: no check ran (INCOMPLETE), none failed
    assert {result.properties(c)["outcome"] for c in (APPEARS, PANELS, GONE)} == {"not_applicable"}
    assert f"configmap-dashboards is not a part of this stack (topology {path} lists it under parts: when it is)" in result.output
    assert ground.stack.apis["oke"].get_object("namespaces", "", NAMESPACE) is None


def test_read_only_skips_the_checks_that_write(ground):
    result = run(ground, "--read-only", "-rs")
    assert result.code == 5, result.output  # the writes it needs were not made: INCOMPLETE
    assert "--read-only: this check writes to the system under test" in result.output
    assert ground.stack.apis["oke"].get_object("namespaces", "", NAMESPACE) is None


@pytest.mark.parametrize("config, diagnosis", [
    # Some guides label dashboards `grafana_dashboard: "true"`; LABEL_VALUE "1" then never matches.
    (SidecarConfig(LABEL="grafana_dashboard", LABEL_VALUE="true"),
     "the sidecar selects ConfigMaps by label grafana_dashboard=true (LABEL/LABEL_VALUE); the ConfigMap carries "
     "grafana_dashboard=1: a ConfigMap without the sidecar's label is never provisioned"),
    # The grafana chart's own default searchNamespace (null): the sidecar's namespace only.
    (SidecarConfig(NAMESPACE="monitoring"),
     f"the sidecar watches monitoring (NAMESPACE), not {NAMESPACE}: set grafana.sidecar.dashboards.searchNamespace: ALL"),
    (SidecarConfig(RESOURCE="secret"), "the sidecar watches secret only (RESOURCE=secret"),
])
def test_a_sidecar_that_does_not_select_the_configmap_fails_at_once_naming_why(tmp_path, prometheus_pair, config, diagnosis):
    with start_dashboards_ground(tmp_path / "ground", prometheus_pair, config=config) as ground:
        result = run(ground, "-k", "appears")
        left = leftovers(ground)
    failure = result.failure(APPEARS)
    assert result.properties(APPEARS)["outcome"] == "failed", failure
    assert f"{HOP}: ConfigMap {NAMESPACE}/conformance-dashboard-" in failure
    assert "is never provisioned: " + diagnosis in failure
    assert result.suite_seconds < 20  # at once: no wait for a ConfigMap the sidecar cannot see
    assert left == []  # cleaned up although the check failed


def test_a_sidecar_refused_by_rbac_is_named_at_once_from_its_log_and_the_other_checks_stop_at_once(ground):
    """The sidecar's env selects the ConfigMap, but the API server refuses its list (no ClusterRole for configmaps):
    it repeats the refused request, so its log's 403 is said at once instead of after the 90 s wait."""
    ground.stack.apis["oke"].deny("configmaps", "list")
    result = run(ground)
    failure = result.failure(APPEARS)
    assert result.properties(APPEARS)["outcome"] == "failed", failure
    assert failure.startswith(f"{HOP}: ConfigMap {NAMESPACE}/conformance-dashboard-"), failure
    assert "is never provisioned: the API server refuses the sidecar's ConfigMap requests (403)" in failure
    assert "ApiException when calling kubernetes: (403)" in failure  # the sidecar's own log says why
    for case in (PANELS, GONE):
        assert result.properties(case)["outcome"] == "precondition", result.failure(case)
        assert "the ConfigMap dashboard is not in Grafana (" in result.failure(case)
    assert result.suite_seconds < 30  # one wait, not three
    assert leftovers(ground) == []


def test_a_sidecar_without_the_folder_annotation_files_it_in_general(tmp_path, prometheus_pair):
    config = SidecarConfig(**{**vars(part_sidecar_config()), "FOLDER_ANNOTATION": None})  # the chart's default null
    with start_dashboards_ground(tmp_path / "ground", prometheus_pair, config=config) as ground:
        result = run(ground, "-k", "appears")
    failure = result.failure(APPEARS)
    assert result.properties(APPEARS)["configmap_dashboard_folder"] == "General"
    assert f"{HOP}: dashboard conformance-" in failure
    assert "is in folder 'General', expected 'Conformance' (annotation grafana_folder: Conformance): the sidecar has " \
           "no FOLDER_ANNOTATION, so it writes every file to /tmp/dashboards itself" in failure


def test_a_provider_without_folders_from_files_structure_is_named(tmp_path, prometheus_pair):
    with start_dashboards_ground(tmp_path / "ground", prometheus_pair, folders_from_files_structure=False) as ground:
        result = run(ground, "-k", "appears")
    failure = result.failure(APPEARS)
    assert "is in folder 'General', expected 'Conformance'" in failure
    assert "Grafana's sidecar provider sidecarProvider files every dashboard in 'General': " \
           "options.foldersFromFilesStructure is off" in failure


def test_a_failing_panel_query_names_the_panel_the_query_and_the_error(ground):
    ground.stack.loki.query_failure = "rpc error: code = Unavailable desc = connection refused"
    result = run(ground, "-k", "panel")
    failure = result.failure(PANELS)
    assert result.properties(PANELS)["outcome"] == "failed", failure
    assert "oke ConfigMap dashboard → datasources: 1 of 2 panel queries fail: conformance-dashboard-" in failure
    assert "/ Log lines: " in failure and "connection refused" in failure
    assert 'for sum(count_over_time({cluster="oke"}[' in failure  # $__interval resolved as Grafana would


def test_a_provider_with_disable_deletion_keeps_the_dashboard_and_says_so(tmp_path, prometheus_pair):
    with start_dashboards_ground(tmp_path / "ground", prometheus_pair, disable_deletion=True) as ground:
        result = run(ground, "-k", "deleted")
    failure = result.failure(GONE)
    assert result.properties(GONE)["outcome"] == "failed", failure
    assert f"{HOP}: dashboard conformance-" in failure
    assert "stayed after ConfigMap conformance-dashboards/conformance-dashboard-" in failure
    assert "no longer provisioned: Grafana keeps a dashboard whose file is gone when its provider has disableDeletion " \
           "(provider sidecarProvider disableDeletion: True" in failure


def test_a_sidecar_that_leaves_the_file_times_out_naming_the_file(tmp_path, prometheus_pair):
    with start_dashboards_ground(tmp_path / "ground", prometheus_pair, keep_files=True) as ground:
        result = run(ground, "-k", "deleted", "--timeout-scale", "0.05")
    failure = result.failure(GONE)
    assert result.properties(GONE)["outcome"] == "timed_out", failure
    assert f"{HOP}: dashboard conformance-" in failure and "still in Grafana after its ConfigMap was deleted" in failure
    assert "still provisioned from Conformance/conformance-dashboard-" in failure
    assert "the sidecar has not removed the file" in failure
    # The wait was the one the sidecar's env and Grafana's provider give, not three rescans (the outcome says which).
    assert ("the sidecar's env says METHOD WATCH: it removes the file on the DELETED event and asks Grafana to reload "
            "(REQ_URL), and Grafana's provider sidecarProvider rescans every 30 s (updateIntervalSeconds): past that, "
            "the file stays") in failure


def test_the_part_overlay_is_what_the_suite_reads():
    """The label and annotation the check puts on its ConfigMap are the values the bring-up gives the chart."""
    from conformance.probes.configmap_dashboards.sidecar import VALUES, sidecar_spec
    dashboards = yaml.safe_load(VALUES.read_text())["grafana"]["sidecar"]["dashboards"]
    spec = sidecar_spec()
    assert (spec.label, spec.label_value, spec.folder_annotation) == ("grafana_dashboard", "1", "grafana_folder")
    assert dashboards["searchNamespace"] == "ALL" and dashboards["provider"]["foldersFromFilesStructure"] is True
