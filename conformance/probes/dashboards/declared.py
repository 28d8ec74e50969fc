"""The Grafana dashboards the stack declares (stack/values/kube-prometheus-stack.yaml), as Grafana shows them.

What the dashboards checks expect on the project's own bring-up; the bring-up provisions the same list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conformance.core import yamltext
from conformance.core.stack import STACK_DIR

KPS_VALUES = STACK_DIR / "values" / "kube-prometheus-stack.yaml"
# kube-prometheus-stack overlays a profile needs on the primary: alloy, Grafana's Loki datasource URL; vector-opensearch,
# no Loki datasource and no Loki dashboard (log search lives in OpenSearch Dashboards).
KPS_OVERLAYS = {"alloy": STACK_DIR / "values" / "kube-prometheus-stack-alloy.yaml",
                "vector-opensearch": STACK_DIR / "values" / "kube-prometheus-stack-vector-opensearch.yaml"}
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
        """The dashboard's file name in the provider's directory: `<key>.json`."""
        return f"{self.key}.json"

    @property
    def path(self) -> str:
        """Where the file is in the Grafana container, as messages name the dashboard's file."""
        return f"{self.directory}/{self.file}"

    @property
    def folder_title(self) -> str:
        """The folder title Grafana shows: General for a provider without a folder."""
        return self.folder or "General"


def declared(values_path: Path = KPS_VALUES, profile: str | None = None) -> list[Dashboard]:
    """Dashboards from grafana.dashboardProviders and grafana.dashboards, in the chart's own shape, less the providers
    the profile's overlay nulls (vector-opensearch: no Loki dashboard)."""
    grafana = yamltext.parse(values_path.read_text())["grafana"]
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
    dashboards = (yamltext.parse(overlay.read_text()).get("grafana") or {}).get("dashboards") or {}
    return {provider for provider, entries in dashboards.items() if entries is None}
