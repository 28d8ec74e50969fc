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

from conformance.core.access import Access
from conformance.core.stack_owner import stack_owner
from conformance.core.topology import Cluster

PROJECT, PROVIDERS, LISTED = "project", "providers", "listed"
SEARCH = "/api/search?type=dash-db"
META = "/api/dashboards/uid/<uid> meta.provisioned or meta.provisionedExternalId"


@dataclass(frozen=True)
class Intent:
    """Whose list the checks expect, and why the suite took it for this stack (for the report)."""

    source: str  # PROJECT, PROVIDERS or LISTED
    why: str
    names: tuple[str, ...] = ()  # LISTED: the topology's dashboards, by uid or title

    def describe(self) -> str:
        what = {PROJECT: "the project's own dashboards (stack/values)",
                PROVIDERS: f"the dashboards Grafana's providers provision ({SEARCH}, each {META})",
                LISTED: f"the dashboards {', '.join(self.names)}, each provisioned by Grafana's providers ({META})",
                }[self.source]
        return f"{what}: {self.why}"


def dashboards_intent(access: Access, primary: Cluster) -> Intent:
    """The topology's `dashboards:` list where it gives one; else the project's list on its own bring-up and what
    Grafana's providers provision on a user's stack (stack_owner: `stack:`, else how Grafana was found)."""
    if primary.dashboards:
        return Intent(LISTED, f"the topology lists them for {primary.name} (dashboards: in {access.topology.path})",
                      primary.dashboards)
    owner = stack_owner(access, primary, "grafana")
    return Intent(PROJECT if owner.bring_up else PROVIDERS, owner.why)


def listed(found: list[ProvisionedDashboard], names: tuple[str, ...]) -> tuple[list[ProvisionedDashboard], list[str]]:
    """The provisioned dashboards the topology lists (by uid or title), and the names none of them answers to."""
    hits = [d for d in found if d.uid in names or d.title in names]
    return hits, [n for n in names if not any(n in (d.uid, d.title) for d in hits)]


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
