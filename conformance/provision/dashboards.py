"""The Grafana dashboards declared in stack/values/kube-prometheus-stack.yaml, and --offline provisioning."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from conformance.errors import ConfigError
from conformance.stack import STACK_DIR

KPS_VALUES = STACK_DIR / "values" / "kube-prometheus-stack.yaml"


@dataclass(frozen=True)
class Dashboard:
    """One dashboard: Grafana shows it with provisionedExternalId "<key>.json" in folder `folder`."""

    provider: str
    folder: str
    key: str
    gnet_id: int
    revision: int


def declared(values_path: Path = KPS_VALUES) -> list[Dashboard]:
    """Dashboards from grafana.dashboardProviders and grafana.dashboards, in the chart's own shape."""
    grafana = yaml.safe_load(values_path.read_text())["grafana"]
    providers = grafana["dashboardProviders"]["dashboardproviders.yaml"]["providers"]
    folders = {p["name"]: p.get("folder", "") for p in providers}
    out = []
    for provider, entries in grafana["dashboards"].items():
        for key, spec in entries.items():
            out.append(Dashboard(provider, folders[provider], key, int(spec["gnetId"]), int(spec.get("revision", 1))))
    return out


def configmap_name(provider: str) -> str:
    return f"grafana-dashboards-{provider}"


def check_offline_dir(path: Path, dashboards: list[Dashboard]) -> None:
    """Every <key>.json must exist and be a bare dashboard with title and uid (failure-modes.md 20)."""
    if not path.is_dir():
        raise ConfigError(f"--offline {path}: not a folder")
    for d in dashboards:
        f = path / f"{d.key}.json"
        if not f.is_file():
            raise ConfigError(f"--offline {path}: {d.key}.json missing (grafana.com dashboard {d.gnet_id} revision {d.revision})")
        try:
            doc = json.loads(f.read_text())
        except ValueError as e:
            raise ConfigError(f"--offline {f}: not JSON: {e}") from None
        if not isinstance(doc, dict) or not doc.get("title") or not doc.get("uid"):
            # A {"dashboard": {...}} wrapper gives "Dashboard title cannot be empty" (grafana#13029).
            raise ConfigError(f"--offline {f}: expected a dashboard with top-level title and uid, not a wrapper")


def offline_configmaps(path: Path, dashboards: list[Dashboard], namespace: str) -> str:
    """ConfigMaps, one per provider, holding <key>.json files for the chart's dashboardsConfigMaps."""
    by_provider: dict[str, dict[str, str]] = {}
    for d in dashboards:
        by_provider.setdefault(d.provider, {})[f"{d.key}.json"] = (path / f"{d.key}.json").read_text()
    docs = [{"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": configmap_name(p), "namespace": namespace},
             "data": files} for p, files in sorted(by_provider.items())]
    return yaml.safe_dump_all(docs, sort_keys=False)


def offline_overlay(dashboards: list[Dashboard]) -> str:
    """Values that swap gnetId downloads for the ConfigMaps (the chart allows one or the other per provider)."""
    providers = sorted({d.provider for d in dashboards})
    overlay = {"grafana": {
        "dashboards": {p: None for p in providers},  # null deletes the key from the merged values
        "dashboardsConfigMaps": {p: configmap_name(p) for p in providers},
    }}
    return yaml.safe_dump(overlay, sort_keys=False)
