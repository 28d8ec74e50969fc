"""Finding each declared dashboard in Grafana: by uid, then by title in its folder, then by file.

The uid is the file's own when it has one; a file without one gets a uid from Grafana, so its title in its folder
names it; `meta.provisionedExternalId` (the file, relative to the provider's path in the Grafana versions read)
is the last resort, because how Grafana 13.2 fills it is not certain from the sources read (docs/real-stack.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Callable

from conformance.probes.dashboards.declared import Dashboard

BY_UID, BY_TITLE, BY_FILE = "uid", "title in folder", "file"


@dataclass(frozen=True)
class Match:
    """A declared dashboard as Grafana has it: the uid Grafana serves, how it was found, its meta."""

    uid: str
    by: str
    meta: dict[str, Any]


def _folder(hit: dict[str, Any]) -> str:
    return hit.get("folderTitle") or "General"


def _ways(meta: Callable[[str], dict[str, Any]]) -> list[tuple[str, Callable[[Dashboard, dict], bool]]]:
    """The ways to recognise a declared dashboard in a search hit, in the order they are tried."""
    return [
        (BY_UID, lambda d, h: bool(d.uid) and h.get("uid") == d.uid),
        (BY_TITLE, lambda d, h: bool(d.title) and h.get("title") == d.title and _folder(h) == d.folder_title),
        (BY_FILE, lambda d, h: PurePosixPath(meta(h["uid"]).get("provisionedExternalId") or "").name == d.file),
    ]


def match_dashboards(grafana, expected: list[Dashboard]) -> dict[str, Match]:
    """The declared dashboards Grafana has, by key. Each way runs over all dashboards before the next way, and a
    hit is claimed once, so a title or a file never takes a dashboard that another one's uid names."""
    hits = list(grafana.search("dash-db"))
    metas: dict[str, dict[str, Any]] = {}

    def meta(uid: str) -> dict[str, Any]:
        if uid not in metas:
            metas[uid] = grafana.dashboard(uid).get("meta") or {}
        return metas[uid]

    found: dict[str, Match] = {}
    for how, fits in _ways(meta):
        for d in expected:
            hit = None if d.key in found else next((h for h in hits if fits(d, h)), None)
            if hit is not None:
                hits.remove(hit)
                found[d.key] = Match(hit["uid"], how, meta(hit["uid"]))
    return found
