"""The Grafana dashboards declared in stack/values/kube-prometheus-stack.yaml, and --offline provisioning.

Offline gives Grafana what the online path gives it: the grafana chart's download
script (grafana chart 12.11.1, templates/_config.tpl, `download_dashboards.sh`)
pipes each download through sed to point its datasources at the declared one;
`online_rewrite` applies the same edit to the files of an --offline folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conformance.errors import ConfigError
from conformance.stack import STACK_DIR

KPS_VALUES = STACK_DIR / "values" / "kube-prometheus-stack.yaml"
# kube-prometheus-stack overlays a profile needs on the primary: alloy, Grafana's Loki datasource URL; vector-opensearch,
# no Loki datasource and no Loki dashboard (log search lives in OpenSearch Dashboards).
KPS_OVERLAYS = {"alloy": STACK_DIR / "values" / "kube-prometheus-stack-alloy.yaml",
                "vector-opensearch": STACK_DIR / "values" / "kube-prometheus-stack-vector-opensearch.yaml"}
# The chart's sed leaves lines naming a built-in datasource ("-- Grafana --") alone.
_BUILTIN = re.compile(r"-- .* --")
_DATASOURCE_FIELD = re.compile(r'"datasource":.*,')
# What the downloaded JSON of each (gnetId, revision) names itself: (uid or None, title). Read in the copies under
# ../shared/dashboards (SOURCES.md there: node-exporter-full and logs-app are grafana.com's bytes, the Istio ones
# Istio 1.29.6's files whose grafana.com revision is unknown). No uid: Grafana assigns one when it provisions the file.
# The provisioning check matches by uid, then by title in the folder, then by file, so a wrong entry here only
# moves the match to the next way (and the report says which way matched).
KNOWN_IDENTITY: dict[tuple[int, int], tuple[str | None, str]] = {
    (1860, 42): ("rYdddlPWk", "Node Exporter Full"),
    (7645, 278): ("1813f692a8e4ac77155348d4c7d2fba8", "Istio Control Plane Dashboard"),
    (7639, 278): ("1a9a8ea49444aae205c7737573e894f9", "Istio Mesh Dashboard"),
    (11829, 278): (None, "Istio Performance Dashboard"),
    (7636, 278): (None, "Istio Service Dashboard"),
    (7630, 278): (None, "Istio Workload Dashboard"),
    (13639, 2): ("sadlil-loki-apps-dashboard", "Logs / App"),
}


@dataclass(frozen=True)
class Dashboard:
    """One dashboard: Grafana shows it with provisionedExternalId "<key>.json" in folder `folder`."""

    provider: str
    folder: str
    key: str
    gnet_id: int
    revision: int
    # The chart's `datasource` of the entry: a name, or a list of {name, value} placeholders.
    datasource: str | list[dict[str, str]] | None = None
    # Where the chart puts the file in the Grafana container (the provider's options.path).
    directory: str = ""
    uid: str | None = None  # the file's own uid, when known (KNOWN_IDENTITY)
    title: str | None = None  # the file's own title, when known

    @property
    def file(self) -> str:
        return f"{self.key}.json"

    @property
    def path(self) -> str:
        return f"{self.directory}/{self.file}"

    @property
    def folder_title(self) -> str:
        """The folder title Grafana shows: General for a provider without a folder."""
        return self.folder or "General"


def declared(values_path: Path = KPS_VALUES, profile: str | None = None) -> list[Dashboard]:
    """Dashboards from grafana.dashboardProviders and grafana.dashboards, in the chart's own shape, less the providers
    the profile's overlay nulls (vector-opensearch: no Loki dashboard)."""
    grafana = yaml.safe_load(values_path.read_text())["grafana"]
    dropped = _providers_dropped(profile)
    providers = grafana["dashboardProviders"]["dashboardproviders.yaml"]["providers"]
    folders = {p["name"]: p.get("folder", "") for p in providers}
    paths = {p["name"]: p["options"]["path"] for p in providers}
    out = []
    for provider, entries in grafana["dashboards"].items():
        if provider in dropped:
            continue
        for key, spec in entries.items():
            gnet_id, revision = int(spec["gnetId"]), int(spec.get("revision", 1))
            uid, title = KNOWN_IDENTITY.get((gnet_id, revision), (None, None))
            out.append(Dashboard(provider, folders[provider], key, gnet_id, revision, spec.get("datasource"),
                                 paths[provider], spec.get("uid", uid), spec.get("title", title)))
    return out


def _providers_dropped(profile: str | None) -> set[str]:
    """The dashboard providers the profile's kube-prometheus-stack overlay sets to null (helm then renders them empty)."""
    overlay = KPS_OVERLAYS.get(profile or "")
    if overlay is None:
        return set()
    dashboards = (yaml.safe_load(overlay.read_text()).get("grafana") or {}).get("dashboards") or {}
    return {provider for provider, entries in dashboards.items() if entries is None}


def configmap_name(provider: str) -> str:
    return f"grafana-dashboards-{provider}"


def online_rewrite(text: str, datasource: str | list[dict[str, str]] | None) -> str:
    """What the chart's download script's sed does to a downloaded dashboard, line by line.

    A name: `sed '/-- .* --/! s/"datasource":.*,/"datasource": "<name>",/g'`.
    A list: `sed -E '/-- .* --/! s/\\$\\{?<name>\\}?/<value>/g'` for each {name, value}.
    """
    if not datasource:
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if _BUILTIN.search(line):
            continue
        if isinstance(datasource, str):
            lines[i] = _DATASOURCE_FIELD.sub(lambda _: f'"datasource": "{datasource}",', line)
        else:
            for d in datasource:
                line = re.sub(r"\$\{?" + re.escape(d["name"]) + r"\}?", lambda _, v=d["value"]: v, line)
            lines[i] = line
    return "\n".join(lines)


def dashboard_problem(doc: Any) -> str | None:
    """Why a parsed JSON document is not a dashboard Grafana can provision, or None.

    No top-level uid is fine: Istio 1.29.6 ships performance, service and workload
    without one, and Grafana assigns one when it provisions the file.
    """
    if not isinstance(doc, dict):
        return f"a JSON {type(doc).__name__}, not a dashboard object"
    if "dashboard" in doc and "panels" not in doc:
        # The API's {"dashboard": {...}} wrapper gives "Dashboard title cannot be empty" (grafana#13029).
        return 'a {"dashboard": ...} wrapper (an API export), not the dashboard itself'
    if not isinstance(doc.get("title"), str) or not doc["title"].strip():
        return "no top-level title"
    panels = doc.get("panels") if "panels" in doc else doc.get("rows")
    if not isinstance(panels, list) or not panels:
        return "no panels"
    return None


def offline_text(path: Path, dashboard: Dashboard) -> str:
    """The file as Grafana must receive it: checked, then rewritten like the online download."""
    f = path / f"{dashboard.key}.json"
    if not f.is_file():
        raise ConfigError(f"--offline {path}: {dashboard.key}.json missing "
                          f"(grafana.com dashboard {dashboard.gnet_id} revision {dashboard.revision})")
    raw = f.read_text()
    try:
        problem = dashboard_problem(json.loads(raw))
    except ValueError as e:
        problem = f"not JSON ({e})"
    if problem:
        raise ConfigError(f"--offline {f}: expected a dashboard JSON, got {problem}")
    text = online_rewrite(raw, dashboard.datasource)
    try:
        json.loads(text)
    except ValueError as e:
        raise ConfigError(f"--offline {f}: pointing its datasources at {dashboard.datasource!r} the way the chart's "
                          f"download does leaves invalid JSON ({e})") from None
    return text


def check_offline_dir(path: Path, dashboards: list[Dashboard]) -> None:
    """Every <key>.json must exist and be a dashboard JSON, before anything runs.

    See docs/troubleshooting.md#dashboard-title-cannot-be-empty.
    """
    if not path.is_dir():
        raise ConfigError(f"--offline {path}: not a folder")
    for d in dashboards:
        offline_text(path, d)


def offline_configmaps(path: Path, dashboards: list[Dashboard], namespace: str) -> str:
    """ConfigMaps, one per provider, holding <key>.json files for the chart's dashboardsConfigMaps."""
    by_provider: dict[str, dict[str, str]] = {}
    for d in dashboards:
        by_provider.setdefault(d.provider, {})[f"{d.key}.json"] = offline_text(path, d)
    docs = [{"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": configmap_name(p), "namespace": namespace},
             "data": files} for p, files in sorted(by_provider.items())]
    return yaml.safe_dump_all(docs, sort_keys=False)


def offline_overlay(dashboards: list[Dashboard]) -> str:
    """Values that swap the gnetId downloads for the ConfigMaps.

    `dashboards: null` as a whole: Helm deletes a key set to null only where the
    chart's defaults have it; the grafana chart has `dashboards: {}` but no
    per-provider keys, so `dashboards.<provider>: null` would leave the download
    volumes in and repeat dashboards-<provider> in the pod (the API server refuses it).
    """
    providers = sorted({d.provider for d in dashboards})
    overlay = {"grafana": {
        "dashboards": None,
        "dashboardsConfigMaps": {p: configmap_name(p) for p in providers},
    }}
    return yaml.safe_dump(overlay, sort_keys=False)


def provisioned_problem(text: str, dashboard: Dashboard) -> str | None:
    """Why the file in the Grafana container is not the declared dashboard with panels, or None."""
    if not text.strip():
        # The chart's `curl -skf ... | sed > file` has no pipefail: a failed download is an empty file.
        return "the file is empty (the download failed and the chart's script went on)"
    try:
        return dashboard_problem(json.loads(text))
    except ValueError as e:
        return f"not JSON ({e})"
