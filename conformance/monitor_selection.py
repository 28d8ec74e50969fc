"""Whether the cluster's Prometheus resource selects one of the stack's monitors: a precondition no wait changes."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from conformance.manifests import load
from conformance.outcomes import PreconditionUnmet
from conformance.prometheus_intent import monitor_selection, read_intent

Record = Callable[[str, object], None]


def require_monitor_selected(access, cluster, manifest: Path, hop: str, record: Record) -> None:
    """Fail at once, naming the label the Prometheus wants, when its selectors leave out the monitor of `manifest`;
    where the resource or the monitor cannot be read, say so (a JUnit property) and return: the check waits as before."""
    doc = load(manifest)
    require_selected(access, cluster, doc["kind"], doc["metadata"]["namespace"], doc["metadata"]["name"], hop, record)


def require_selected(access, cluster, kind: str, namespace: str, name: str, hop: str, record: Record) -> None:
    """require_monitor_selected for the monitor namespace/name of `kind` as found on the cluster."""
    intent = read_intent(access, cluster)
    if isinstance(intent, str):
        record("monitor_selection", f"not judged: {intent}")
        return
    selection = monitor_selection(access.kube(cluster), intent, kind, namespace, name)
    record("monitor_selection", selection.text if selection.selected is not False else "not selected")
    if selection.selected is False:
        raise PreconditionUnmet(hop, selection.text, f"read from {intent.source} (spec) and the {kind}'s labels "
                                f"through the {cluster.name} API server; the operator renders a scrape pool only for "
                                "a monitor it selects (docs/troubleshooting.md#monitor-not-selected-by-the-prometheus)")
