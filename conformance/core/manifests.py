"""Facts the checks read from the stack's own manifests, so names live in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conformance.core import yamltext
from conformance.core.stack import STACK_DIR

MANIFESTS = STACK_DIR / "manifests"
APP = STACK_DIR / "app"


def load(path: Path) -> dict:
    """The first document of a manifest file."""
    return next(d for d in yamltext.parse_all(path.read_text()) if d)


def scrape_pool(path: Path, endpoint: int = 0) -> str:
    """The scrape pool the operator makes for a ServiceMonitor/PodMonitor: '<kind>/<ns>/<name>/<endpoint>'."""
    monitor = load(path)
    kind = {"ServiceMonitor": "serviceMonitor", "PodMonitor": "podMonitor"}[monitor["kind"]]
    meta = monitor["metadata"]
    return f"{kind}/{meta['namespace']}/{meta['name']}/{endpoint}"


ENVOY_POOL = scrape_pool(MANIFESTS / "envoy-podmonitor.yaml")
ISTIOD_POOL = scrape_pool(MANIFESTS / "istiod-servicemonitor.yaml")


@dataclass(frozen=True)
class Deployment:
    namespace: str
    name: str


def traffic_generator() -> Deployment:
    """The sample app's traffic generator (on the remotes, created with replicas 0)."""
    meta = load(APP / "traffic.yaml")["metadata"]
    return Deployment(meta["namespace"], meta["name"])
