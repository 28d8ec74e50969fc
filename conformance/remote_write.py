"""Remote-write sender health, read from the sending Prometheus's own /metrics, and why series are missing.

The sender's metrics are declared here, in one place (names as of Prometheus
2.2x-3.x; prometheus/prometheus#8890, #12832 for the lag caveats).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from conformance.clients.prometheus import PrometheusClient
from conformance.exposition import Sample, parse_samples

SENT = "prometheus_remote_storage_samples_total"
FAILED = "prometheus_remote_storage_samples_failed_total"
DROPPED = "prometheus_remote_storage_samples_dropped_total"
RETRIED = "prometheus_remote_storage_samples_retried_total"
PENDING = "prometheus_remote_storage_samples_pending"
HIGHEST_SENT = "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"
HIGHEST_IN = "prometheus_remote_storage_highest_timestamp_in_seconds"

QUEUE_COUNTERS = {"sent": SENT, "failed": FAILED, "dropped": DROPPED, "retried": RETRIED, "pending": PENDING, "highest_sent": HIGHEST_SENT}


@dataclass
class Queue:
    """One remote_write queue (one url) of a sender."""

    url: str
    sent: float = 0.0
    failed: float = 0.0
    dropped: float = 0.0
    retried: float = 0.0
    pending: float = 0.0
    highest_sent: float = 0.0


@dataclass
class SenderSnapshot:
    """A sender's remote-write state at one moment."""

    queues: dict[str, Queue] = field(default_factory=dict)
    highest_in: float = 0.0  # newest sample timestamp appended to the sender's WAL

    def lag(self, queue: Queue) -> float:
        """Seconds the queue trails the newest sample (a false positive if relabelling drops all; #12832)."""
        return max(0.0, self.highest_in - queue.highest_sent) if queue.highest_sent else self.highest_in


def snapshot_from_metrics(text: str) -> SenderSnapshot:
    """Build a snapshot from exposition text."""
    samples: list[Sample] = parse_samples(text)
    snap = SenderSnapshot()
    for s in samples:
        if s.name == HIGHEST_IN:
            snap.highest_in = max(snap.highest_in, s.value)
            continue
        for attr, name in QUEUE_COUNTERS.items():
            if s.name == name and "url" in s.labels:
                queue = snap.queues.setdefault(s.labels["url"], Queue(s.labels["url"]))
                setattr(queue, attr, getattr(queue, attr) + s.value)
    return snap


def sender_snapshot(sender: PrometheusClient) -> SenderSnapshot:
    """Read the sender's own /metrics."""
    return snapshot_from_metrics(sender.http.request("GET", "/metrics").text)


def external_labels(sender: PrometheusClient) -> dict[str, str]:
    """The sender's configured global.external_labels."""
    config = yaml.safe_load(sender.config_yaml()) or {}
    return (config.get("global") or {}).get("external_labels") or {}


def scrape_interval_seconds(sender: PrometheusClient, default: float = 30.0) -> float:
    """The sender's global scrape interval (kube-prometheus-stack's default is 30 s)."""
    config = yaml.safe_load(sender.config_yaml()) or {}
    raw = str((config.get("global") or {}).get("scrape_interval") or "")
    return parse_duration(raw) if raw else default


def parse_duration(raw: str) -> float:
    """A Prometheus duration such as 30s, 1m or 1m30s in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    total, number = 0.0, ""
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if raw.startswith("ms", i) else ch
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    return total


def explain_missing_series(sender: PrometheusClient | None, cluster: str) -> str:
    """One clause on why a remote's series are not on the primary, from the sender's side."""
    if sender is None:
        return f"the {cluster} Prometheus is not in the topology, so the sender cannot be asked"
    try:
        labels = external_labels(sender)
        snap = sender_snapshot(sender)
    except Exception as e:  # the diagnosis is best effort; the check's failure stands regardless
        return f"the {cluster} Prometheus could not be asked ({type(e).__name__}: {e})"
    if labels.get("cluster") != cluster:
        found = f"cluster={labels['cluster']}" if "cluster" in labels else "no cluster label"
        return f"the {cluster} Prometheus sends {found} (global.external_labels); expected cluster={cluster}"
    if not snap.queues:
        return f"nothing was sent: the {cluster} Prometheus has no remote_write queue (remote_write is not configured)"
    parts = []
    for q in snap.queues.values():
        if q.failed:
            parts.append(f"the sender reports {q.failed:.0f} failed samples to {q.url} (the receiver rejects them; see its log)")
        elif q.sent == 0:
            parts.append(f"nothing was sent to {q.url} yet ({q.pending:.0f} pending, {q.retried:.0f} retried)")
        else:
            parts.append(f"the sender reports {q.sent:.0f} samples sent to {q.url} and none failed")
    return "; ".join(parts)
