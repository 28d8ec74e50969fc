"""Why a ConfigMap dashboard is not picked up or lands elsewhere, read from the sidecar's env and Grafana's provider."""

from __future__ import annotations

import pytest

from conformance.probes.configmap_dashboards.sidecar import (
    SidecarEnv, folder_expected_by, new_dashboard, sidecar_env, sidecar_provider, sidecar_spec, why_not_selected,
)

SPEC = sidecar_spec()
DASH = new_dashboard("oke")
PART = {"LABEL": "grafana_dashboard", "LABEL_VALUE": "1", "NAMESPACE": "ALL", "RESOURCE": "both",
        "FOLDER": "/tmp/dashboards", "FOLDER_ANNOTATION": "grafana_folder"}


@pytest.mark.parametrize("env, why", [
    (PART, ""),
    ({**PART, "LABEL_VALUE": ""}, ""),  # LABEL alone selects any value
    ({**PART, "NAMESPACE": "monitoring,conformance-dashboards"}, ""),
    (None, "the Grafana pod has no grafana-sc-dashboard container: the dashboard sidecar is off"),
    ({**PART, "LABEL": "dashboards"}, "the sidecar selects ConfigMaps by label dashboards=1 (LABEL/LABEL_VALUE)"),
    ({k: v for k, v in PART.items() if k != "NAMESPACE"},
     "the sidecar watches its own namespace only (NAMESPACE), not conformance-dashboards"),
    ({**PART, "RESOURCE": "secret"}, "the sidecar watches secret only"),
])
def test_why_the_sidecar_does_not_select_the_configmap(env, why):
    found = why_not_selected(SidecarEnv(env), DASH, SPEC)
    assert found.startswith(why) if why else found == ""


@pytest.mark.parametrize("env, provider, why", [
    (PART, {"name": "sidecarProvider", "options": {"foldersFromFilesStructure": True}}, ""),
    ({**PART, "FOLDER_ANNOTATION": ""}, None, "the sidecar has no FOLDER_ANNOTATION, so it writes every file to /tmp/dashboards"),
    ({**PART, "FOLDER_ANNOTATION": "k8s-sidecar-target-directory"}, None,
     "the sidecar reads the folder from annotation k8s-sidecar-target-directory (FOLDER_ANNOTATION), the ConfigMap sets grafana_folder"),
    (PART, {"name": "sidecarProvider", "folder": "", "options": {"foldersFromFilesStructure": False}},
     "Grafana's sidecar provider sidecarProvider files every dashboard in 'General'"),
])
def test_why_the_dashboard_is_not_in_its_folder(env, provider, why):
    found = folder_expected_by(SidecarEnv(env), provider, SPEC)
    assert found.startswith(why) if why else found == ""


def test_the_env_and_provider_are_read_as_the_chart_renders_them():
    pod = {"containers": [{"name": "grafana"}, {"name": "grafana-sc-dashboard", "env": [
        {"name": "LABEL", "value": "grafana_dashboard"},
        {"name": "REQ_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "g", "key": "admin-password"}}}]}]}
    assert sidecar_env(pod).env == {"LABEL": "grafana_dashboard"}  # credentials by reference are never read
    assert sidecar_env({"containers": [{"name": "grafana"}]}).env is None
    provider = sidecar_provider("apiVersion: 1\nproviders:\n  - name: 'sidecarProvider'\n    orgId: 1\n    type: file\n"
                                "    options:\n      foldersFromFilesStructure: true\n      path: /tmp/dashboards\n")
    assert provider["options"] == {"foldersFromFilesStructure": True, "path": "/tmp/dashboards"}
    assert sidecar_provider("{not yaml") is None
