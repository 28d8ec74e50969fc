"""metrics: every remote cluster's Prometheus series reach the primary through remote_write, fresh."""

from __future__ import annotations

import time

import pytest

from conformance.clients.prometheus import RECEIVER_SETTING
from conformance.eventually import NotYet, Wait, eventually, timeout_scale
from conformance.outcomes import Failed, PreconditionUnmet
from conformance.remote_write import explain_missing_series, scrape_interval_seconds, sender_snapshot
from conformance.access import ServiceAbsent
from conformance.hops import hop
from conformance.http import APIError, Unreachable
from conformance.clients.prometheus import PrometheusClient

pytestmark = pytest.mark.metrics

# A remote sample reaches the primary within one scrape interval plus the queue's
# batch_send_deadline (5 s by default) plus query slack; 15 s covers the last two.
FRESHNESS_MARGIN = 15.0
# Series show up after the first scrape and the first send; the chart scrapes every 30 s.
SERIES_WAIT = Wait(timeout=90, delay=0.5, max_delay=5)
# kube-prometheus-stack's default scrape interval.
CHART_SCRAPE_INTERVAL = 30.0
# How long sender counters are watched for failures and growing lag: at least one scrape
# interval plus one batch_send_deadline (Prometheus' default 5 s), or a window can hold no send
# at all and a failing queue looks healthy (at the chart's 30 s interval, 5 of 6 times).
SENDER_WINDOW = 5.0
SEND_DEADLINE = 5.0


def receiver_or_fail(primary, primary_prometheus, read_only: bool, hop_name: str) -> None:
    """Fail at once, with the fixing setting, when the primary cannot receive."""
    status = primary_prometheus.receiver_from_flags() if read_only else primary_prometheus.probe_receiver()
    if not status.enabled:
        raise PreconditionUnmet(hop_name, f"the remote-write receiver is disabled; set {RECEIVER_SETTING}", status.evidence)


def sender_or_none(access, remote) -> PrometheusClient | None:
    """The remote's own Prometheus when the topology gives a way to it."""
    try:
        return PrometheusClient(access.endpoint(remote, "prometheus").http)
    except ServiceAbsent:
        return None


def remote_scrape_interval(sender: PrometheusClient | None) -> float:
    """The remote's global scrape interval; the chart's 30 s when the remote cannot be asked."""
    if sender is None:
        return CHART_SCRAPE_INTERVAL
    try:
        return scrape_interval_seconds(sender, default=CHART_SCRAPE_INTERVAL)
    except (APIError, Unreachable):
        return CHART_SCRAPE_INTERVAL


@pytest.mark.requirement("must")
def test_primary_accepts_remote_write(primary, primary_prometheus, read_only):
    """The primary's Prometheus runs the remote-write receiver."""
    receiver_or_fail(primary, primary_prometheus, read_only, f"remote Prometheus → {primary.name} Prometheus")


@pytest.mark.requirement("must")
def test_remote_series_reach_the_primary(remote, primary, primary_prometheus, access, read_only, record_property):
    """Every remote cluster's series are on the primary with cluster=<name>."""
    name = hop("metrics", remote, primary)
    receiver_or_fail(primary, primary_prometheus, read_only, name)
    started = time.monotonic()

    def probe():
        result = primary_prometheus.query(f'count(up{{cluster="{remote.name}"}})')
        if not result:
            clusters = sorted({s["metric"].get("cluster", "") for s in primary_prometheus.query("count by (cluster) (up)")})
            raise NotYet(f"no up{{cluster=\"{remote.name}\"}} on the primary; cluster values there: {clusters}")
        return int(float(result[0]["value"][1]))

    count = eventually(probe, hop=name, what=f"no series with cluster={remote.name}", wait=SERIES_WAIT,
                       diagnose=lambda: explain_missing_series(sender_or_none(access, remote), remote.name))
    record_property("remote_targets_on_primary", count)
    record_property("remote_series_wait_seconds", round(time.monotonic() - started, 2))


@pytest.mark.requirement("must")
def test_remote_series_are_fresh(remote, primary, primary_prometheus, access, record_property):
    """The newest remote sample on the primary is younger than the remote's scrape interval plus a margin."""
    sender = sender_or_none(access, remote)
    interval = remote_scrape_interval(sender)
    margin = FRESHNESS_MARGIN * timeout_scale()  # slow CI sends late as well as answering late
    limit = interval + margin
    name = hop("metrics", remote, primary)

    def probe():
        result = primary_prometheus.query(f'max(timestamp(up{{cluster="{remote.name}"}}))')
        if not result:
            raise NotYet(f"no up{{cluster=\"{remote.name}\"}} on the primary")
        evaluated_at, newest = result[0]["value"][0], float(result[0]["value"][1])
        return evaluated_at - newest

    age = eventually(probe, hop=name, what=f"no series with cluster={remote.name}", wait=SERIES_WAIT,
                     diagnose=lambda: explain_missing_series(sender, remote.name))
    record_property("remote_write_sample_age_seconds", round(age, 2))
    record_property("remote_scrape_interval_seconds", interval)
    if age > limit:
        raise Failed(name, f"the newest sample with cluster={remote.name} is {age:.0f} s old; "
                           f"expected under {limit:.0f} s (scrape interval {interval:.0f} s + {margin:.0f} s)",
                     explain_missing_series(sender, remote.name))


@pytest.mark.requirement("should")
def test_remote_write_sender_is_healthy(remote, primary, access, record_property):
    """The remote's remote-write queues fail and drop nothing, and their lag does not grow."""
    sender = sender_or_none(access, remote)
    if sender is None:
        pytest.skip(f"prometheus is not in the topology for cluster {remote.name}")
    name = hop("metrics", remote, primary)
    before = sender_snapshot(sender)
    if not before.queues:
        raise Failed(name, f"nothing is sent: the {remote.name} Prometheus has no remote_write queue")
    # A slow CI needs a longer look, like a longer wait; never shorter than one scrape and send.
    window = max(SENDER_WINDOW * timeout_scale(), remote_scrape_interval(sender) + SEND_DEADLINE)
    time.sleep(window)
    after = sender_snapshot(sender)
    problems, lags = [], []
    for url, q in after.queues.items():
        b = before.queues.get(url)
        if b is None:
            continue
        failed, dropped = q.failed - b.failed, q.dropped - b.dropped
        lag_before, lag_after = before.lag(b), after.lag(q)
        lags.append(lag_after)
        if failed > 0:
            problems.append(f"{failed:.0f} samples failed to {url}")
        if dropped > 0:
            problems.append(f"{dropped:.0f} samples dropped for {url}")
        # Lag grows by the window when nothing leaves; a healthy queue stays within one send deadline.
        if lag_after > lag_before + window / 2 and lag_after > 30:
            problems.append(f"lag to {url} grew from {lag_before:.0f} s to {lag_after:.0f} s")
    record_property("remote_write_lag_seconds", round(max(lags, default=0.0), 2))
    if problems:
        raise Failed(name, f"in {window:.0f} s: " + "; ".join(problems),
                     "counters: " + ", ".join(f"{u}: sent={q.sent:.0f} failed={q.failed:.0f} dropped={q.dropped:.0f} "
                                               f"retried={q.retried:.0f} pending={q.pending:.0f}" for u, q in after.queues.items()))
