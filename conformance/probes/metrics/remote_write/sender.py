"""A sender's remote-write queues, read from its own /metrics.

The sender's metrics are declared here, in one place, as Prometheus v3.14.0 names
them (storage/remote/queue_manager.go newQueueManagerMetrics: namespace
"prometheus", subsystem "remote_storage", const labels remote_name and url).
Recoverable send errors (a network error, 5xx, 429 with retry_on_http_429) are
retried forever and counted as retried, never as failed; samples_total counts
every attempt, retries included, so it says nothing about delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.clients.prometheus import PrometheusClient
from conformance.core.exposition import Sample, parse_samples

ATTEMPTED = "prometheus_remote_storage_samples_total"  # recordBatchAttempt: each try of each batch
FAILED = "prometheus_remote_storage_samples_failed_total"  # non-recoverable errors only (e.g. 4xx)
RETRIED = "prometheus_remote_storage_samples_retried_total"  # recoverable errors, retried with backoff
DROPPED = "prometheus_remote_storage_samples_dropped_total"  # by reason: relabelling, too old, unknown series
PENDING = "prometheus_remote_storage_samples_pending"  # in the shards, not yet sent
SHARDS = "prometheus_remote_storage_shards"
HIGHEST_SENT = "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"  # 0 until a batch was sent
HIGHEST_ENQUEUED = "prometheus_remote_storage_queue_highest_timestamp_seconds"  # newest sample in the queue
HIGHEST_IN = "prometheus_remote_storage_highest_timestamp_in_seconds"  # deprecated, not per queue: a fallback

QUEUE_METRICS = {"attempted": ATTEMPTED, "failed": FAILED, "retried": RETRIED, "dropped": DROPPED,
                 "pending": PENDING, "shards": SHARDS, "highest_sent": HIGHEST_SENT,
                 "highest_enqueued": HIGHEST_ENQUEUED}


@dataclass
class Queue:
    """One remote_write queue (one url) of a sender."""

    url: str
    remote_name: str = ""
    attempted: float = 0.0
    failed: float = 0.0
    retried: float = 0.0
    dropped: float = 0.0
    pending: float = 0.0
    shards: float = 0.0
    highest_sent: float = 0.0
    highest_enqueued: float = 0.0

    @property
    def never_sent(self) -> bool:
        """No batch has ever left this queue (the highest sent timestamp is still its initial 0)."""
        return self.highest_sent == 0

    @property
    def retrying_undelivered(self) -> bool:
        """Nothing ever delivered and the sender is retrying: every try so far met a recoverable error."""
        return self.never_sent and self.retried > 0 and self.failed == 0


@dataclass
class SenderSnapshot:
    """A sender's remote-write state at one moment."""

    queues: dict[str, Queue] = field(default_factory=dict)
    highest_in: float = 0.0  # newest sample appended to the sender's storage (deprecated metric)

    def lag(self, queue: Queue) -> float | None:
        """Seconds the queue trails its newest sample; None when nothing was ever sent (a lag from 0 is from 1970).

        A false positive when relabelling drops every sample (prometheus/prometheus#12832).
        """
        if queue.never_sent:
            return None
        newest = queue.highest_enqueued or self.highest_in
        return max(0.0, newest - queue.highest_sent)


def snapshot_from_metrics(text: str) -> SenderSnapshot:
    """Build a snapshot from exposition text."""
    samples: list[Sample] = parse_samples(text)
    snap = SenderSnapshot()
    for s in samples:
        if s.name == HIGHEST_IN:
            snap.highest_in = max(snap.highest_in, s.value)
            continue
        for attr, name in QUEUE_METRICS.items():
            if s.name == name and "url" in s.labels:
                queue = snap.queues.setdefault(s.labels["url"], Queue(s.labels["url"], s.labels.get("remote_name", "")))
                setattr(queue, attr, getattr(queue, attr) + s.value)  # dropped sums over its reason label
    return snap


def sender_snapshot(sender: PrometheusClient) -> SenderSnapshot:
    """Read the sender's own /metrics."""
    return snapshot_from_metrics(sender.http.request("GET", "/metrics").text)
