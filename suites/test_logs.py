"""logs: every cluster's logs reach the primary Loki under cluster=<that cluster>."""

from __future__ import annotations

import time

import pytest

from conformance.canary import new_tag
from conformance.eventually import NotYet, Wait, eventually, timeout_scale
from conformance.exposition import parse_samples, sum_by
from conformance.hops import hop
from conformance.http import APIError
from conformance.outcomes import Failed

pytestmark = pytest.mark.logs

# Promtail batches for up to 1 s and Loki makes a line queryable as soon as the
# ingester has it; 60 s leaves room for a cold agent. Polls are at most 1 s apart
# so the verdict comes within about a second of the line becoming visible.
CANARY_WAIT = Wait(timeout=60, delay=0.25, max_delay=1)
LABEL_WAIT = Wait(timeout=60, delay=1, max_delay=5)
DISCARD_WINDOW = 5.0  # seconds of Loki's discard counters the check watches at least
LOOKBACK = 300  # seconds of Loki searched around the canary


@pytest.fixture(scope="session")
def discards_at_start(loki) -> dict[str, float] | None:
    """Loki's discarded-sample counters by reason when the logs checks began (None: not reachable)."""
    try:
        return _discards(loki)
    except APIError as e:
        if e.transient:  # e.g. 503 while Loki has no ready pod: the checks' own waits report it, with their hop
            return None
        raise


def _discards(loki) -> dict[str, float] | None:
    try:
        text = loki.metrics()
    except APIError as e:
        if e.status in (401, 403, 404):
            return None
        raise
    return sum_by(parse_samples(text), "loki_discarded_samples_total", "reason")


def streams_summary(loki, cluster_name: str, now: float) -> str:
    """What Loki has for cluster=<name> recently, for the timeout's headline."""
    streams = loki.streams(f'{{cluster="{cluster_name}"}}', start=now - LOOKBACK, end=now, limit=50)
    if not streams:
        return f"Loki has no stream with cluster={cluster_name} in the last {LOOKBACK // 60} min"
    newest = max(int(v[0]) for s in streams for v in s["values"]) / 1e9
    return f"Loki has {len(streams)} streams with cluster={cluster_name}; the newest entry is {now - newest:.0f} s old"


@pytest.mark.writes
@pytest.mark.requirement("must")
def test_log_canary_reaches_the_primary_loki(cluster, primary, loki, emitter, discards_at_start, record_property):
    """A uniquely tagged line emitted in the cluster shows up in the primary Loki under cluster=<cluster>."""
    line = emitter.emit(new_tag(cluster.name))
    exact = f'{{cluster="{cluster.name}"}} |= "{line.tag}"'
    stray = [f'{{cluster=~".+"}} |= "{line.tag}"', f'{emitter.broad_selector()} |= "{line.tag}"']
    name = hop("logs", cluster, primary)

    def probe():
        now = time.time()
        found = loki.streams(exact, start=line.emitted_at - LOOKBACK, end=now + 60, limit=5)
        if found:
            return now
        for query in stray:
            for stream in loki.streams(query, start=line.emitted_at - LOOKBACK, end=now + 60, limit=5):
                labels = stream["stream"]
                if labels.get("cluster") == cluster.name:
                    return time.time()  # it became visible between the two queries
                carried = f"cluster={labels['cluster']}" if "cluster" in labels else "no cluster label"
                raise Failed(name, f"the canary line arrived with {carried}, not cluster={cluster.name}",
                             f"its labels: {labels}\nline: {line.text}")
        raise NotYet(f"no line matching {exact}")

    seen_at = eventually(probe, hop=name, what="no canary line", wait=CANARY_WAIT,
                         diagnose=lambda: streams_summary(loki, cluster.name, time.time()))
    record_property("log_propagation_seconds", round(max(0.0, seen_at - line.emitted_at), 3))


@pytest.mark.requirement("must")
def test_loki_cluster_label_lists_every_cluster(topology, primary, loki, record_property):
    """The primary Loki's `cluster` label values include every cluster of the topology."""
    expected = set(topology.names)

    def probe():
        values = set(loki.label_values("cluster"))
        if not expected <= values:
            raise NotYet(f"cluster values {sorted(values)}")
        return values

    def missing_hops() -> str:
        values = set(loki.label_values("cluster"))
        return "missing: " + ", ".join(hop("logs", topology.cluster(n), primary) for n in sorted(expected - values))

    values = eventually(probe, hop=f"every Promtail → {primary.name} Loki", what="cluster label values incomplete",
                        wait=LABEL_WAIT, diagnose=missing_hops)
    record_property("loki_cluster_values", ",".join(sorted(values)))


@pytest.mark.requirement("should")
def test_loki_discards_nothing(primary, loki, discards_at_start, record_property):
    """Loki's discarded-sample counters do not grow while the checks run."""
    if discards_at_start is None:
        pytest.skip(f"Loki's own metrics (/metrics) are not reachable on {primary.name}")
    time.sleep(DISCARD_WINDOW * timeout_scale())  # stretches like the waits
    now = _discards(loki) or {}
    grown = {reason: now[reason] - discards_at_start.get(reason, 0.0) for reason in now
             if now[reason] > discards_at_start.get(reason, 0.0)}
    record_property("loki_discarded_samples", int(sum(grown.values())))
    if grown:
        reasons = ", ".join(f"{reason}: {count:.0f}" for reason, count in sorted(grown.items()))
        raise Failed(f"every Promtail → {primary.name} Loki", f"Loki discarded samples during the run ({reasons})",
                     "see failure-modes.md section 1: too_far_behind/out_of_order (clock or a missing cluster label), "
                     "rate_limited (ingestion limits), greater_than_max_sample_age (old files re-read)")


