"""Why a remote's series are not on the primary, told from the sender's side."""

from __future__ import annotations

from conformance.clients.prometheus import PrometheusClient
from conformance.probes.metrics.remote_write.config import external_labels
from conformance.probes.metrics.remote_write.log import LogSource, describe_last_error
from conformance.probes.metrics.remote_write.sender import Queue, SenderSnapshot, sender_snapshot


def retrying_undelivered(queue: Queue, log: LogSource | None) -> str:
    """The verdict on a queue that never delivered and retries: it retries forever (recoverable errors)."""
    return (f"nothing delivered yet to {queue.url}; the sender is retrying ({queue.retried:.0f} samples retried, "
            f"{queue.pending:.0f} pending; last error: {describe_last_error(log, queue.url)})")


def undelivered(snap: SenderSnapshot) -> list[Queue]:
    """The queues that never delivered a sample and are retrying."""
    return [q for q in snap.queues.values() if q.retrying_undelivered]


def explain_queues(snap: SenderSnapshot, log: LogSource | None) -> str:
    """One clause per queue: delivering, rejected, retrying, or not sent yet."""
    parts = []
    for q in snap.queues.values():
        if q.failed:
            parts.append(f"the sender reports {q.failed:.0f} samples failed to {q.url}, a non-recoverable error "
                         f"(last error: {describe_last_error(log, q.url)})")
        elif q.retrying_undelivered:
            parts.append(retrying_undelivered(q, log))
        elif q.never_sent:
            parts.append(f"nothing sent to {q.url} yet ({q.pending:.0f} pending, nothing retried)")
        else:
            lag = snap.lag(q)
            retrying = f", {q.retried:.0f} samples retried" if q.retried else ""
            parts.append(f"the sender delivers to {q.url} (newest sent sample {lag:.0f} s behind its newest{retrying}); "
                         f"is that URL the primary's receiver?")
    return "; ".join(parts)


def explain_missing_series(sender: PrometheusClient | None, cluster: str, log: LogSource | None = None,
                           label: str = "cluster") -> str:
    """One clause on why a remote's series are not on the primary, from the sender's side."""
    if sender is None:
        return f"the {cluster} Prometheus is not in the topology, so the sender cannot be asked"
    try:
        labels = external_labels(sender)
        snap = sender_snapshot(sender)
    except Exception as e:  # the diagnosis is best effort; the check's failure stands regardless
        return f"the {cluster} Prometheus could not be asked ({type(e).__name__}: {e})"
    if labels.get(label) != cluster:
        found = f"{label}={labels[label]}" if label in labels else f"no {label} label"
        return f"the {cluster} Prometheus sends {found} (global.external_labels); expected {label}={cluster}"
    if not snap.queues:
        return f"nothing was sent: the {cluster} Prometheus has no remote_write queue (remote_write is not configured)"
    return explain_queues(snap, log)
