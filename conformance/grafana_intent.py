"""Which dashboards the dashboards checks expect: the project's own list (stack/values) for its own bring-up, else the
dashboards Grafana's providers provision, read from Grafana (docs/real-stack.md#dashboards).

In the Grafana versions read (pkg/api/dashboard.go `GetDashboard`), a dashboard with provisioning data answers
`meta.provisionedExternalId` (its file, relative to its provider's path) and `meta.provisioned: true` unless its
provider sets `allowUiUpdates`; either says a provider provisions it. How Grafana 13.2 fills them was not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from conformance.access import Access
from conformance.outcomes import Unobservable
from conformance.topology import Cluster

PROJECT, PROVIDERS = "project", "providers"
SEARCH = "/api/search?type=dash-db"
META = "/api/dashboards/uid/<uid> meta.provisioned or meta.provisionedExternalId"


@dataclass(frozen=True)
class Intent:
    """Whose list the checks expect, and why the suite took it for this stack (for the report)."""

    source: str  # PROJECT or PROVIDERS
    why: str

    def describe(self) -> str:
        what = ("the project's own dashboards (stack/values)" if self.source == PROJECT
                else f"the dashboards Grafana's providers provision ({SEARCH}, each {META})")
        return f"{what}: {self.why}"


def dashboards_intent(access: Access, primary: Cluster) -> Intent:
    """The project's list on its own bring-up, whose Grafana is at the bring-up's Service name; a Grafana the topology
    gives by URL keeps it too (nothing tells). A Grafana found elsewhere is a user's: what its providers provision."""
    if "grafana" in primary.services:
        return Intent(PROJECT, f"the topology gives Grafana's URL on {primary.name}: nothing says whose stack it is")
    try:
        found = access.located(primary, "grafana")
    except Unobservable as e:
        return Intent(PROJECT, f"Grafana not found on {primary.name} ({e.reason})")
    if found.how == "bring-up name":
        return Intent(PROJECT, f"Grafana is the bring-up's Service {found.where}")
    return Intent(PROVIDERS, f"Grafana found at {found.where} ({found.how}), not under the bring-up's name")


@dataclass(frozen=True)
class ProvisionedDashboard:
    """A dashboard a Grafana provider provisions, as Grafana reports it (the expectation on a user's stack)."""

    key: str  # its file's name without .json (as the project's keys, so stack/dashboard-exclusions.yaml applies), else its uid
    uid: str
    title: str
    folder_title: str
    path: str  # meta.provisionedExternalId, "" when only meta.provisioned says so
    gnet_id: int | None = None

    @property
    def file(self) -> str:
        return PurePosixPath(self.path).name if self.path else f"{self.uid}.json"


def provisioned_dashboards(grafana: Any) -> list[ProvisionedDashboard]:
    """Every dash-db search hit whose meta says a provider provisions it; keys unique (a repeated file name: the uid)."""
    out: list[ProvisionedDashboard] = []
    for hit in grafana.search("dash-db"):
        meta = grafana.dashboard(hit["uid"]).get("meta") or {}
        path = str(meta.get("provisionedExternalId") or "")
        if not (meta.get("provisioned") or path):
            continue
        stem = PurePosixPath(path).name.removesuffix(".json") if path else ""
        key = stem if stem and stem not in {d.key for d in out} else hit["uid"]
        folder = meta.get("folderTitle") or hit.get("folderTitle") or "General"
        out.append(ProvisionedDashboard(key, hit["uid"], str(hit.get("title") or ""), folder, path))
    return out
