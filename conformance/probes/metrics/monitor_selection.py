"""Whether the cluster's Prometheus resource selects one of the stack's monitors: a precondition no wait changes."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from conformance.core.manifests import load
from conformance.core.outcomes import PreconditionUnmet
from conformance.probes.metrics.label_selector import describe
from conformance.probes.metrics.prometheus_intent import FIELDS, PrometheusIntent, monitor_selection, read_intent

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


def not_selected_words(access, cluster, manifest: Path) -> str:
    """Why the scrape pool of this project's monitor (`manifest`) is missing: see monitor_not_selected_words."""
    doc = load(manifest)
    meta = doc["metadata"]
    carried = ", ".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items())) or "no labels"
    return monitor_not_selected_words(access, cluster, doc["kind"], meta["namespace"], meta["name"],
                                      f"applied by this project carries {carried}")


def monitor_not_selected_words(access, cluster, kind: str, namespace: str, name: str, about: str) -> str:
    """Why a monitor's scrape pool is missing, naming what the cluster's Prometheus resource selects (where it was
    read), or, where it cannot be read, what is known of the monitor (`about`) and that the resource could not be asked."""
    label_field, ns_field, _ = FIELDS[kind]
    monitor = f"{kind} {namespace}/{name}"
    intent = read_intent(access, cluster) if access is not None else "no API access was given"
    if isinstance(intent, PrometheusIntent):
        ns = intent.spec.get(ns_field)
        where = (f"namespaces with {describe(ns)}" if ns is not None else f"its own namespace {intent.namespace} only")
        wants = (f"{intent.source} selects {kind}s with {describe(intent.spec.get(label_field))} ({label_field}) in "
                 f"{where} ({ns_field})")
    else:
        wants = f"its {label_field} decides; {intent}; the {monitor} {about}"
    return (f"the {monitor} is not selected by the Prometheus ({wants}; see "
            "docs/troubleshooting.md#monitor-not-selected-by-the-prometheus) or no pod matches it")
