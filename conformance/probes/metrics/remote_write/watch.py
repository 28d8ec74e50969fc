"""A remote's sender as the metrics checks watch it: its own log where its provider has it, its scrape interval, a
queue that never delivered, and a window of its queue counters (its own past scrapes, else watched)."""

from __future__ import annotations

import time

from conformance.clients.prometheus import PrometheusClient
from conformance.core import timing
from conformance.core.http import APIError, ServiceError, Unreachable
from conformance.core.outcomes import Failed
from conformance.core.providers import provider_of
from conformance.probes.metrics.remote_write.config import scrape_interval_seconds
from conformance.probes.metrics.remote_write.diagnosis import retrying_undelivered, undelivered
from conformance.probes.metrics.remote_write.history import matching, past_snapshots
from conformance.probes.metrics.remote_write.log import LogSource
from conformance.probes.metrics.remote_write.sender import SenderSnapshot, sender_snapshot


# A remote whose interval cannot be read: the longest a kube-prometheus-stack scrapes unless its values say otherwise
# (prometheus-operator's default; this stack's values set 15 s), so an unread interval never makes a healthy remote stale.
CHART_SCRAPE_INTERVAL = timing.OPERATOR_SCRAPE
# The sender's log searched for its last send error; it repeats a line at most once a minute (logging.Dedupe).
SENDER_LOG_SECONDS = 600


def sender_log(access, remote) -> LogSource:
    """The remote Prometheus's own log, wherever its provider has it (its pods, or the topology's prometheus_log file)."""
    provider = provider_of(access, remote)
    return LogSource(lambda: provider.service_log("prometheus", SENDER_LOG_SECONDS))


def stop_if_never_delivered(sender: PrometheusClient | None, log: LogSource, hop_name: str) -> None:
    """Fail final when the sender never delivered a sample and retries: recoverable errors are retried forever."""
    if sender is None:
        return
    try:
        stuck = undelivered(sender_snapshot(sender))
    except ServiceError:  # the sender is not the hop judged here; its own check reports it unreachable
        return
    if stuck:
        raise Failed(hop_name, "; ".join(retrying_undelivered(q, log) for q in stuck),
                     "prometheus_remote_storage_queue_highest_sent_timestamp_seconds is 0 (no batch ever sent) and "
                     "samples_retried_total grows: Prometheus retries recoverable errors (connection, 5xx, 429) forever",
                     final=True)


def remote_scrape_interval(sender: PrometheusClient | None) -> float:
    """The remote's global scrape interval; the operator's default when the remote cannot be asked."""
    if sender is None:
        return CHART_SCRAPE_INTERVAL
    try:
        return scrape_interval_seconds(sender, default=CHART_SCRAPE_INTERVAL)
    except (APIError, Unreachable):
        return CHART_SCRAPE_INTERVAL


def sender_window(sender: PrometheusClient, window: float) -> tuple[SenderSnapshot, SenderSnapshot, float, str]:
    """The queues window seconds ago and now: from the sender's own scrapes of itself at once, else watched."""
    try:
        pasts = past_snapshots(sender, window)
    except ServiceError:
        pasts = []  # the sender answers /metrics but not this query: watch instead
    now = sender_snapshot(sender)
    if past := matching(pasts, now):
        return past.snapshot, now, past.seconds_ago, "its own scrapes"
    time.sleep(window)
    return now, sender_snapshot(sender), window, "watched"
