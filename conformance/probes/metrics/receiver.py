"""Whether the primary can receive remote write: its running flags (or a probe write), and the setting of its
Prometheus resource that turns the receiver off, where that resource can be read."""

from __future__ import annotations

from conformance.clients.prometheus import RECEIVER_SETTING
from conformance.core.outcomes import PreconditionUnmet
from conformance.probes.metrics.prometheus_intent import read_intent, receiver_setting


def receiver_or_fail(primary, primary_prometheus, read_only: bool, hop_name: str, access=None) -> None:
    """Fail at once, with the fixing setting, when the primary cannot receive; the primary's Prometheus resource,
    where it can be read, says which of its settings turns the receiver off."""
    status = primary_prometheus.receiver_from_flags() if read_only else primary_prometheus.probe_receiver()
    if not status.enabled:
        setting = receiver_intent(access, primary) if access is not None else ""
        raise PreconditionUnmet(hop_name, f"the remote-write receiver is disabled; set {RECEIVER_SETTING}"
                                + (f" ({setting})" if setting else ""), status.evidence)


def receiver_intent(access, primary) -> str:
    """What the primary's Prometheus resource says of the receiver, or '' when it cannot be read."""
    intent = read_intent(access, primary)
    if isinstance(intent, str):
        return ""
    on, setting = receiver_setting(intent)
    return f"{setting}; the running Prometheus has not taken it up" if on else setting
