"""What a cluster's Prometheus resource (monitoring.coreos.com/v1) says it should do, read through its API server.

Semantics follow prometheus-operator v0.93 (docs/real-stack.md#the-stacks-own-intent): resource_selector.go
selectObjects, operator.go SelectNamespacesFromCache, promcfg.go buildExternalLabels and the receiver's flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from conformance.core.http import ServiceError
from conformance.probes.metrics.label_selector import InvalidSelector, describe, has, keys, unmet
from conformance.core.outcomes import Unobservable

GROUP, VERSION = "monitoring.coreos.com", "v1"
FIELDS = {"PodMonitor": ("podMonitorSelector", "podMonitorNamespaceSelector", "podmonitors"),
          "ServiceMonitor": ("serviceMonitorSelector", "serviceMonitorNamespaceSelector", "servicemonitors")}
RECEIVER_ARG = "web.enable-remote-write-receiver"


@dataclass(frozen=True)
class PrometheusIntent:
    """One Prometheus resource's spec, and which one it is."""

    namespace: str
    name: str
    spec: dict[str, Any]

    @property
    def source(self) -> str:
        return f"Prometheus {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Selection:
    """Whether the resource selects a monitor: True, False (text is the diagnosis) or None (text says why unjudged)."""

    selected: bool | None
    text: str


def read_intent(access, cluster) -> PrometheusIntent | str:
    """The cluster's Prometheus resource, or why it cannot be read (endpoints, no access, no CRD, none found)."""
    try:
        kube = access.kube(cluster)
        located = access.located(cluster, "prometheus")
    except Unobservable as e:
        return f"the Prometheus resource of {cluster.name} cannot be read: {e}"
    spec = located.spec
    try:
        listed = kube.call(f"list Prometheus resources in {spec.namespace}", kube.custom().list_namespaced_custom_object,
                           GROUP, VERSION, spec.namespace, "prometheuses", ok=(404,))
    except ServiceError as e:
        why = (f"the credentials may not list them ({e.status})" if getattr(e, "status", 0) in (401, 403) else str(e))
        return f"the Prometheus resources of {cluster.name} cannot be read: {why}"
    if listed is None:
        return (f"the Prometheus resources of {cluster.name} cannot be read: the API server serves no "
                f"monitoring.coreos.com/v1 prometheuses (404 in {spec.namespace})")
    items = listed.get("items") or []
    named = located.how.removeprefix("Prometheus ").split("/")[-1] if located.how.startswith("Prometheus ") else spec.service
    picked = [o for o in items if o["metadata"]["name"] == named] or (items if len(items) == 1 else [])
    if not picked:
        return (f"no Prometheus resource of {cluster.name} is the one behind {located.where} "
                f"({len(items)} in {spec.namespace}: {sorted(o['metadata']['name'] for o in items)})")
    meta = picked[0]["metadata"]
    return PrometheusIntent(meta["namespace"], meta["name"], picked[0].get("spec") or {})


def monitor_selection(kube, intent: PrometheusIntent, kind: str, namespace: str, name: str) -> Selection:
    """Whether `intent` selects the monitor namespace/name of `kind`, as the operator's selectObjects decides."""
    try:
        return _selection(kube, intent, kind, namespace, name)
    except ServiceError as e:
        return Selection(None, f"{kind} {namespace}/{name} cannot be judged against {intent.source}: {e}")


def _selection(kube, intent: PrometheusIntent, kind: str, namespace: str, name: str) -> Selection:
    label_field, ns_field, plural = FIELDS[kind]
    monitor = kube.call(f"read {kind} {namespace}/{name}", kube.custom().get_namespaced_custom_object,
                        GROUP, VERSION, namespace, plural, name, ok=(403, 404))
    if monitor is None:
        return Selection(None, f"{kind} {namespace}/{name} cannot be read (absent, or the credentials may not read it)")
    labels = (monitor.get("metadata") or {}).get("labels") or {}
    head = f"{kind} {namespace}/{name} is not selected by {intent.source}"
    ns_selector = intent.spec.get(ns_field)
    if ns_selector is None and namespace != intent.namespace:
        return Selection(False, f"{head}: its {ns_field} is unset, so it selects {kind}s only in its own namespace "
                                f"{intent.namespace}; the monitor is in {namespace}")
    if ns_selector is not None:
        ns = kube.call(f"read namespace {namespace}", kube.core().read_namespace, namespace, ok=(403, 404))
        if ns is None:
            return Selection(None, f"namespace {namespace} cannot be read to judge {intent.source}'s {ns_field}")
        refused = _refused(ns_selector, ns.metadata.labels or {}, f"{head}: its {ns_field}",
                           lambda wants, got: f"{head}: its {ns_field} wants namespaces with {wants}, namespace "
                                              f"{namespace} has {got}")
        if refused is not None:
            return refused
    selector = intent.spec.get(label_field)
    if selector is None:
        return Selection(False, f"{head}: its {label_field} is unset, which selects no {kind} (prometheus-operator: "
                                f"an unset selector selects nothing, {{}} selects every one)")
    refused = _refused(selector, labels, f"{head}: its {label_field}",
                       lambda wants, got: f"{head}: it wants {wants} ({label_field}), the monitor has {got}")
    if refused is not None:
        return refused
    return Selection(True, f"{kind} {namespace}/{name} is selected by {intent.source} ({label_field}: "
                           f"{describe(selector)})")


def external_labels(intent: PrometheusIntent) -> dict[str, tuple[str, str]]:
    """The external labels the operator writes (promcfg.go buildExternalLabels): name -> (value, where it is set)."""
    spec, out = intent.spec, {}
    for field, default, value in (("prometheusExternalLabelName", "prometheus", f"{intent.namespace}/{intent.name}"),
                                  ("replicaExternalLabelName", "prometheus_replica", "$(POD_NAME)")):
        label = spec.get(field) if spec.get(field) is not None else default
        if label:
            out[label] = (value, f"{intent.source} spec.{field}" if spec.get(field) is not None else
                          f"{intent.source}: the operator's {field} default")
    for k, v in (spec.get("externalLabels") or {}).items():
        out.setdefault(k, (str(v), f"{intent.source} spec.externalLabels.{k}"))
    return out


def cluster_label(intent: PrometheusIntent, cluster: str, preferred: str = "cluster") -> tuple[str, str]:
    """The external label whose value is the topology's cluster name, and where it is set; ValueError says why none."""
    labels = external_labels(intent)
    if labels.get(preferred, ("",))[0] == cluster:
        return preferred, labels[preferred][1]
    carrying = [k for k, (v, _) in labels.items() if v == cluster]
    if len(carrying) == 1 and preferred not in labels:
        return carrying[0], labels[carrying[0]][1]
    if preferred in labels:
        value, where = labels[preferred]
        raise ValueError(f"{intent.source} labels its series {preferred}={value} ({where}); the topology names the "
                         f"cluster {cluster}")
    given = ", ".join(f"{k}={v}" for k, (v, _) in sorted(labels.items())) or "none"
    raise ValueError(f"{intent.source} gives its series no external label with the value {cluster} (external labels: "
                     f"{given}; set spec.externalLabels.{preferred}: {cluster})")


def receiver_setting(intent: PrometheusIntent) -> tuple[bool, str]:
    """Whether the resource turns the remote-write receiver on, and the setting that says so."""
    spec = intent.spec
    if spec.get("enableRemoteWriteReceiver"):
        return True, f"{intent.source} spec.enableRemoteWriteReceiver: true"
    if any((a or {}).get("name") == RECEIVER_ARG for a in spec.get("additionalArgs") or []):
        return True, f"{intent.source} spec.additionalArgs: {RECEIVER_ARG}"
    if "remote-write-receiver" in (spec.get("enableFeatures") or []):
        if str(spec.get("version") or "").lstrip("v").startswith("2."):
            return True, f"{intent.source} spec.enableFeatures: [remote-write-receiver] (Prometheus {spec['version']})"
        return False, (f"{intent.source} has enableFeatures: [remote-write-receiver], a flag Prometheus 3.0 removed; "
                       "set spec.enableRemoteWriteReceiver: true")
    return False, f"{intent.source} has no spec.enableRemoteWriteReceiver: true"


def remote_write_urls(intent: PrometheusIntent) -> list[str]:
    """The URLs of spec.remoteWrite, in order."""
    return [str(r.get("url") or "") for r in intent.spec.get("remoteWrite") or []]


def _refused(selector: dict, labels: dict[str, str], whose: str, says: Callable[[str, str], str]) -> Selection | None:
    """Not selected: the labels lack what the selector wants (says(wanted, what the labels have) words it), or the
    selector is invalid and selects nothing (the operator's answer); None when the labels are selected."""
    try:
        wanted = unmet(selector, labels)
    except InvalidSelector as e:
        return Selection(False, f"{whose} is invalid ({e}), so the operator selects nothing")
    return Selection(False, says(", ".join(wanted), has(labels, keys(selector)))) if wanted else None
