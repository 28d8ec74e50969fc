"""Why a remote's series are not on the primary, told from the sender's side."""

from __future__ import annotations

from conformance.clients.prometheus import PrometheusClient
from conformance.remote_write.config import external_labels
from conformance.remote_write.sender import sender_snapshot


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
