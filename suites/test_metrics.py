"""metrics: remote clusters' Prometheus series reach the primary through remote_write."""

from __future__ import annotations

import pytest

from conformance.clients.prometheus import RECEIVER_SETTING
from conformance.outcomes import PreconditionUnmet

pytestmark = pytest.mark.metrics


@pytest.mark.requirement("must")
def test_primary_accepts_remote_write(primary, primary_prometheus, read_only):
    """The primary's Prometheus runs the remote-write receiver."""
    status = primary_prometheus.receiver_from_flags() if read_only else primary_prometheus.probe_receiver()
    if not status.enabled:
        raise PreconditionUnmet(
            f"remote Prometheus → {primary.name} Prometheus",
            f"the remote-write receiver is disabled; set {RECEIVER_SETTING}",
            status.evidence,
        )
