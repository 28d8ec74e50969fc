"""A sender's remote-write queues, read from its own /metrics.

The sender's metrics are declared here, in one place (names as of Prometheus
2.2x-3.x; prometheus/prometheus#8890, #12832 for the lag caveats).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
