"""What the configmap-dashboards checks make and read: the labelled ConfigMap, the sidecar's settings, and why not.

The label, its value and the folder annotation come from the part's values overlay (the one place the stack
sets them). The sidecar's own settings are read back from the Grafana pod: grafana chart 12.11.1
templates/_pod.tpl renders them as the env of the `grafana-sc-dashboard` container (LABEL, LABEL_VALUE,
NAMESPACE, RESOURCE, FOLDER_ANNOTATION, METHOD), and templates/_config.tpl the provider file Grafana reads
(ConfigMap <grafana fullname>-config-dashboards, key provider.yaml). What the env means is k8s-sidecar 2.10.1
src/resources.py (label selector `LABEL=LABEL_VALUE`, or `LABEL` alone when the value is empty; NAMESPACE ALL
or a comma-separated list; a relative annotation value is a subfolder of FOLDER).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from conformance.core import yamltext
from conformance.core.scratch_namespace import ScratchNamespace
from conformance.core.stack import STACK_DIR, StackService

VALUES = STACK_DIR / "values" / "kube-prometheus-stack-configmap-dashboards.yaml"
SIDECAR_CONTAINER = "grafana-sc-dashboard"  # templates/_pod.tpl: {{ grafana.name }}-sc-dashboard
PROVIDER_KEY = "provider.yaml"  # templates/configmap-dashboard-provider.yaml data key
NAMESPACE = "conformance-dashboards"  # where the check's ConfigMap lives: created and deleted by the check
FOLDER = "Conformance"  # the folder the ConfigMap's annotation asks for


@dataclass(frozen=True)
class SidecarSpec:
    """What the stack's values say the sidecar selects and how it files what it finds."""

    label: str
    label_value: str
    folder_annotation: str

    @property
    def labels(self) -> dict[str, str]:
        return {self.label: self.label_value}


def sidecar_spec(path: Path = VALUES) -> SidecarSpec:
    dashboards = yamltext.parse(path.read_text())["grafana"]["sidecar"]["dashboards"]
    return SidecarSpec(str(dashboards["label"]), str(dashboards.get("labelValue") or ""),
                       str(dashboards["folderAnnotation"]))


@dataclass(frozen=True)
class ConfigMapDashboard:
    """One run's dashboard: a uid and ConfigMap name of its own, queries over series every stack has."""

    uid: str
    name: str
    title: str
    namespace: str
    folder: str
    cluster: str  # the primary's cluster label, which its Promtail puts on every line
    file: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "file", f"{self.name}.json")

    def json(self) -> dict:
        """A small dashboard in Grafana's file shape: one Prometheus panel, one Loki panel (uids of the stack's datasources)."""
        return {
            "uid": self.uid, "title": self.title, "tags": ["conformance"], "schemaVersion": 39, "version": 1,
            "time": {"from": "now-1h", "to": "now"}, "templating": {"list": []},
            "panels": [
                {"id": 1, "type": "timeseries", "title": "Targets up",
                 "datasource": {"type": "prometheus", "uid": "prometheus"},
                 "gridPos": {"h": 8, "w": 12, "x": 0, "y": 0},
                 # `up` exists wherever Prometheus scrapes anything, itself included.
                 "targets": [{"refId": "A", "expr": "sum(up)", "datasource": {"type": "prometheus", "uid": "prometheus"}}]},
                {"id": 2, "type": "timeseries", "title": "Log lines",
                 "datasource": {"type": "loki", "uid": "loki"},
                 "gridPos": {"h": 8, "w": 12, "x": 12, "y": 0},
                 # The primary's Promtail ships the stack's own pod logs under cluster=<primary> all the time.
                 "targets": [{"refId": "A", "expr": f'sum(count_over_time({{cluster="{self.cluster}"}}[$__interval]))',
                              "datasource": {"type": "loki", "uid": "loki"}}]},
            ],
        }

    def configmap(self, spec: SidecarSpec) -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": self.name, "namespace": self.namespace,
                             "labels": {**spec.labels, "app.kubernetes.io/managed-by": "monitoring-conformance"},
                             "annotations": {spec.folder_annotation: self.folder}},
                "data": {self.file: json.dumps(self.json(), indent=1)}}


def new_dashboard(cluster: str, namespace: str = NAMESPACE, folder: str = FOLDER) -> ConfigMapDashboard:
    tag = uuid.uuid4().hex[:10]
    return ConfigMapDashboard(uid=f"conformance-{tag}", name=f"conformance-dashboard-{tag}",
                              title=f"Conformance ConfigMap dashboard {tag}", namespace=namespace, folder=folder,
                              cluster=cluster)


@dataclass(frozen=True)
class SidecarEnv:
    """The grafana-sc-dashboard container's env as the Grafana pod runs it (None: no such container)."""

    env: dict[str, str] | None

    def get(self, key: str, default: str = "") -> str:
        return (self.env or {}).get(key, default)


def sidecar_env(pod_spec: dict) -> SidecarEnv:
    """The sidecar container's plain env values (valueFrom entries, the credentials, are left out)."""
    for c in (pod_spec.get("containers") or []) + (pod_spec.get("initContainers") or []):
        if c.get("name") in (SIDECAR_CONTAINER, "grafana-init-sc-dashboard"):
            return SidecarEnv({e["name"]: str(e.get("value", "")) for e in c.get("env") or [] if "value" in e})
    return SidecarEnv(None)


def why_not_selected(env: SidecarEnv, dash: ConfigMapDashboard, spec: SidecarSpec) -> str:
    """Why the sidecar does not pick up the ConfigMap, from its env; empty when its env selects it."""
    if env.env is None:
        return (f"the Grafana pod has no {SIDECAR_CONTAINER} container: the dashboard sidecar is off "
                "(grafana.sidecar.dashboards.enabled)")
    resource = env.get("RESOURCE", "configmap")  # src/sidecar.py: RESOURCE defaults to configmap
    if resource not in ("configmap", "both"):
        return f"the sidecar watches {resource} only (RESOURCE={resource}; grafana.sidecar.dashboards.resource)"
    label, value = env.get("LABEL"), env.get("LABEL_VALUE")
    carried = spec.labels
    if label not in carried or (value and carried[label] != value):
        selector = f"{label}={value}" if value else label
        shown = ", ".join(f"{k}={v}" for k, v in carried.items())
        return (f"the sidecar selects ConfigMaps by label {selector} (LABEL/LABEL_VALUE); the ConfigMap carries {shown}: "
                "a ConfigMap without the sidecar's label is never provisioned (grafana.sidecar.dashboards.label, labelValue)")
    namespaces = env.get("NAMESPACE")
    if namespaces != "ALL" and dash.namespace not in namespaces.split(","):
        watched = namespaces or "its own namespace only"
        return (f"the sidecar watches {watched} (NAMESPACE), not {dash.namespace}: set "
                "grafana.sidecar.dashboards.searchNamespace: ALL")
    return ""


def folder_expected_by(env: SidecarEnv, provider: dict | None, spec: SidecarSpec) -> str:
    """Why a ConfigMap dashboard lands outside its annotated folder, from the sidecar's env and Grafana's provider."""
    annotation = env.get("FOLDER_ANNOTATION")
    if env.env is not None and not annotation:
        return (f"the sidecar has no FOLDER_ANNOTATION, so it writes every file to {env.get('FOLDER') or 'its folder'} "
                "itself, whatever the annotation says (grafana.sidecar.dashboards.folderAnnotation)")
    if annotation and annotation != spec.folder_annotation:
        return (f"the sidecar reads the folder from annotation {annotation} (FOLDER_ANNOTATION), the ConfigMap sets "
                f"{spec.folder_annotation} (grafana.sidecar.dashboards.folderAnnotation)")
    if provider is not None and not (provider.get("options") or {}).get("foldersFromFilesStructure"):
        folder = provider.get("folder") or "General"
        return (f"Grafana's sidecar provider {provider.get('name')} files every dashboard in {folder!r}: "
                "options.foldersFromFilesStructure is off (grafana.sidecar.dashboards.provider.foldersFromFilesStructure)")
    return ""


def sidecar_provider(provider_yaml: str) -> dict | None:
    """The first provider of the chart's provider.yaml (the sidecar's), or None when it does not parse."""
    try:
        doc = yamltext.parse(provider_yaml) or {}
        return (doc.get("providers") or [None])[0]
    except yaml.YAMLError:
        return None


class DashboardConfigMap:
    """The check's ConfigMap in a namespace of its own on the primary: created, deleted, always cleaned up."""

    def __init__(self, kube, dash: ConfigMapDashboard, spec: SidecarSpec) -> None:
        self.kube, self.dash, self.spec = kube, dash, spec
        self.core = kube.core()
        self.hop = f"conformance → {kube.cluster.name} API server (dashboard ConfigMap)"
        self.not_provisioned = ""  # why an earlier check found no dashboard: the later ones stop at once
        self.grafana: StackService | None = None  # where the run found Grafana (its pod's sidecar, its provider)
        self.namespace = ScratchNamespace(kube, dash.namespace, self.hop, "dashboard")

    def create(self) -> None:
        """The namespace (waiting out an earlier run's that is still terminating), then the ConfigMap."""
        self.namespace.create()
        self.kube.call("create the dashboard ConfigMap", self.core.create_namespaced_config_map, self.dash.namespace,
                       self.dash.configmap(self.spec))

    def delete(self) -> None:
        self.kube.call("delete the dashboard ConfigMap", self.core.delete_namespaced_config_map, self.dash.name,
                       self.dash.namespace, ok=(404,))

    def cleanup(self) -> None:
        """The ConfigMap first (so the sidecar removes its file), then the namespace."""
        self.delete()
        self.namespace.delete(wait=False)


GRAFANA_RESCAN_DEFAULT = 10.0  # Grafana's file provider updateIntervalSeconds when the provider sets none
SLEEP_TIME_DEFAULT = 60.0  # k8s-sidecar's SLEEP_TIME default (METHOD SLEEP: one list pass every SLEEP_TIME)


@dataclass(frozen=True)
class RemovalPace:
    """How soon a deleted ConfigMap's dashboard leaves Grafana, from the sidecar's env and Grafana's provider."""

    sidecar_delay: float
    rescan: float
    why: str


def removal_pace(env: SidecarEnv, provider: dict | None) -> RemovalPace | None:
    """The sidecar's delay in seeing a deletion (METHOD WATCH: its event, at once; SLEEP: SLEEP_TIME) and the provider's
    rescan; None when the env or the provider cannot be read or the method keeps no watch (LIST runs once)."""
    if env.env is None or provider is None:
        return None
    method = env.get("METHOD", "WATCH").upper() or "WATCH"
    try:
        rescan = float(provider.get("updateIntervalSeconds") or GRAFANA_RESCAN_DEFAULT)
        sleep = float(env.get("SLEEP_TIME") or SLEEP_TIME_DEFAULT)
    except (TypeError, ValueError):
        return None
    if method == "WATCH":
        delay, seen = 0.0, "METHOD WATCH: it removes the file on the DELETED event"
    elif method == "SLEEP":
        delay, seen = sleep, f"METHOD SLEEP: it removes the file at its next pass, every SLEEP_TIME {sleep:g} s"
    else:
        return None
    reload = "asks Grafana to reload (REQ_URL)" if env.get("REQ_URL") else "sets no REQ_URL"
    why = (f"the sidecar's env says {seen} and {reload}, and Grafana's provider {provider.get('name', '?')} rescans "
           f"every {rescan:g} s (updateIntervalSeconds)")
    return RemovalPace(delay, rescan, why)
