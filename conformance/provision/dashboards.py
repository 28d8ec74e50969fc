"""The Grafana dashboards declared in stack/values/kube-prometheus-stack.yaml, and --offline provisioning.

Offline gives Grafana what the online path gives it: the grafana chart's download
script (grafana chart 12.11.1, templates/_config.tpl, `download_dashboards.sh`)
pipes each download through sed to point its datasources at the declared one;
`online_rewrite` applies the same edit to the files of an --offline folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from conformance.core.errors import ConfigError
# The bring-up provisions the list the checks expect (its phases call dashboards.declared()).
from conformance.probes.dashboards.declared import KPS_OVERLAYS, Dashboard, declared  # noqa: F401

# The chart's sed leaves lines naming a built-in datasource ("-- Grafana --") alone.
_BUILTIN = re.compile(r"-- .* --")
_DATASOURCE_FIELD = re.compile(r'"datasource":.*,')


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
