"""A sender's remote-write queues some seconds ago, read back from its own scrapes of itself.

kube-prometheus-stack's Prometheus scrapes itself (prometheus.serviceMonitor.selfMonitor, on by default), so its
queue counters of a minute ago are in its own TSDB: comparing them with /metrics now judges the window at once,
instead of watching it pass. A sender that does not scrape itself has no such past: the caller watches instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.clients.prometheus import PrometheusClient
from conformance.remote_write.sender import ATTEMPTED, QUEUE_METRICS, Queue, SenderSnapshot

# The queue metrics, as one selector (the counters summed over instances and reasons, as /metrics is read).
_SELECTOR = '{__name__=~"' + "|".join(sorted(QUEUE_METRICS.values())) + '"}'
# A past further back than this many windows is not "the window": the self-scrape has stopped or lags.
STALEST = 4.0


@dataclass
class Past:
    """The queues as the sender scraped them, and how long ago (seconds, on the sender's clock)."""

    snapshot: SenderSnapshot
    seconds_ago: float


def past_snapshot(sender: PrometheusClient, seconds_ago: float) -> Past | None:
    """The queues as of seconds_ago from the sender's own TSDB; None when it holds no such past for every queue."""
    offset = f"offset {max(1, round(seconds_ago))}s"
    samples = sender.query(f"{_SELECTOR} {offset}")
    stamps = sender.query(f"timestamp({ATTEMPTED} {offset})")
    if not samples or not stamps:
        return None
    snap = SenderSnapshot()
    for s in samples:
        metric, value = s["metric"], float(s["value"][1])
        if "url" not in metric:
            continue
        attr = next(a for a, name in QUEUE_METRICS.items() if name == metric["__name__"])
        queue = snap.queues.setdefault(metric["url"], Queue(metric["url"], metric.get("remote_name", "")))
        combine = max if attr.startswith("highest") else (lambda a, b: a + b)
        setattr(queue, attr, combine(getattr(queue, attr), value))
    evaluated_at = float(stamps[0]["value"][0])
    ago = evaluated_at - min(float(s["value"][1]) for s in stamps)
    if ago > seconds_ago * STALEST:
        return None
    return Past(snap, ago)


def covers(past: Past, now: SenderSnapshot) -> bool:
    """True when the past holds every queue of now and no counter went back (a restart, or other instances summed)."""
    for url, q in now.queues.items():
        b = past.snapshot.queues.get(url)
        if b is None or any(getattr(b, a) > getattr(q, a) for a in ("attempted", "failed", "retried", "dropped")):
            return False
    return True
