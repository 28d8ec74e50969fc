"""A sender's remote-write queues some seconds ago, read back from its own scrapes of itself.

kube-prometheus-stack's Prometheus scrapes itself (prometheus.serviceMonitor.selfMonitor, on by default), so its
queue counters of a minute ago are in its own TSDB: comparing them with /metrics now judges the window at once,
instead of watching it pass. A sender that does not scrape itself has no such past: the caller watches instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.clients.prometheus import PrometheusClient
from conformance.probes.metrics.remote_write.sender import ATTEMPTED, QUEUE_METRICS, Queue, SenderSnapshot

# The queue metrics, as one selector.
_SELECTOR = '{__name__=~"' + "|".join(sorted(QUEUE_METRICS.values())) + '"}'
# A past further back than this many windows is not "the window": the self-scrape has stopped or lags.
STALEST = 4.0


@dataclass
class Past:
    """The queues as the sender scraped them, and how long ago (seconds, on the sender's clock)."""

    snapshot: SenderSnapshot
    seconds_ago: float
    instance: str = ""  # the scraped target it came from


def past_snapshots(sender: PrometheusClient, seconds_ago: float) -> list[Past]:
    """The queues as of seconds_ago, one Past per scraped instance (an HA pair scrapes both replicas); [] without."""
    offset = f"offset {max(1, round(seconds_ago))}s"
    samples = sender.query(f"{_SELECTOR} {offset}")
    stamps = sender.query(f"timestamp({ATTEMPTED} {offset})")
    snaps: dict[str, SenderSnapshot] = {}
    for s in samples:
        metric, value = s["metric"], float(s["value"][1])
        if "url" not in metric:
            continue
        attr = next(a for a, name in QUEUE_METRICS.items() if name == metric["__name__"])
        snap = snaps.setdefault(metric.get("instance", ""), SenderSnapshot())
        queue = snap.queues.setdefault(metric["url"], Queue(metric["url"], metric.get("remote_name", "")))
        setattr(queue, attr, getattr(queue, attr) + value)  # dropped sums over its reason label, as /metrics is read
    pasts = []
    for s in stamps:
        instance, ago = s["metric"].get("instance", ""), float(s["value"][0]) - float(s["value"][1])
        if instance in snaps and ago <= seconds_ago * STALEST and all(p.instance != instance for p in pasts):
            pasts.append(Past(snaps[instance], ago, instance))
    return pasts


def matching(pasts: list[Past], now: SenderSnapshot) -> Past | None:
    """The past of the process answering now: every queue of now, no counter above now's, the most attempted."""
    fits = [p for p in pasts if _precedes(p.snapshot, now)]
    return max(fits, key=lambda p: sum(q.attempted for q in p.snapshot.queues.values()), default=None)


def _precedes(past: SenderSnapshot, now: SenderSnapshot) -> bool:
    """True when past holds every queue of now and no counter went back (else a restart, or another replica)."""
    for url, q in now.queues.items():
        b = past.queues.get(url)
        if b is None or any(getattr(b, a) > getattr(q, a) for a in ("attempted", "failed", "retried", "dropped")):
            return False
    return True
