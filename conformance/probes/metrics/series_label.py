"""The external label that tells a cluster's series apart on the primary, read from the cluster's Prometheus resource,
else (an endpoints cluster, a resource that cannot be read) from the configuration its Prometheus loaded."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.clients.prometheus import PrometheusClient
from conformance.core.http import ServiceError, single_attempts
from conformance.core.outcomes import Unobservable
from conformance.probes.metrics.prometheus_intent import PrometheusIntent, cluster_label, read_intent
from conformance.probes.metrics.remote_write.config import external_labels

DEFAULT = "cluster"  # the label the bring-up sets (stack/values externalLabels) and the suite's fallback


@dataclass(frozen=True)
class SeriesLabel:
    """The label's name and where it was read (or why the suite's default stands)."""

    name: str
    where: str

    def __str__(self) -> str:
        return f"{self.name} ({self.where})"


def series_label(access, cluster) -> SeriesLabel:
    """The external label of cluster's Prometheus resource whose value is the cluster's name; where the resource cannot
    be read, its Prometheus's loaded global.external_labels; the suite's default `cluster` where neither names it."""
    intent = read_intent(access, cluster) if access is not None else "no API access was given"
    if not isinstance(intent, PrometheusIntent):
        return loaded_label(access, cluster, intent)
    try:
        name, where = cluster_label(intent, cluster.name, DEFAULT)
    except ValueError as e:
        return SeriesLabel(DEFAULT, f"the suite's default: {e}")
    return SeriesLabel(name, where)


def loaded_label(access, cluster, unread: str) -> SeriesLabel:
    """The label among the external labels cluster's Prometheus loaded whose value is its name (`cluster` first, else
    the only one); the default, saying why, where it gives none or cannot be asked once."""
    try:
        prom = access.client_or_none(cluster, "prometheus", PrometheusClient) if access is not None else None
    except Unobservable:  # not found, or two found: the checks that need it say so
        prom = None
    if prom is None:
        return SeriesLabel(DEFAULT, f"the suite's default: {unread}")
    try:
        with single_attempts():
            labels = external_labels(prom)
    except ServiceError as e:
        return SeriesLabel(DEFAULT, f"the suite's default: {unread}; the {prom.name} could not be asked ({e.headline})")
    carrying = sorted(k for k, v in labels.items() if v == cluster.name)
    name = DEFAULT if DEFAULT in carrying else carrying[0] if len(carrying) == 1 and DEFAULT not in labels else None
    if name is None:
        given = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none"
        return SeriesLabel(DEFAULT, f"the suite's default: {unread}; the {prom.name} loaded no external label with the "
                                    f"value {cluster.name} alone (global.external_labels: {given})")
    return SeriesLabel(name, f"the {prom.name} global.external_labels.{name} (/api/v1/status/config; {unread})")
