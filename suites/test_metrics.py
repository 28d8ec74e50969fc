"""metrics: every remote cluster's Prometheus series reach the primary through remote_write, fresh."""

from __future__ import annotations

import time

import pytest

from conformance.core import timing
from conformance.core.eventually import NotYet, eventually, timeout_scale
from conformance.core.outcomes import Failed
from conformance.probes.metrics.remote_write import describe_last_error, explain_missing_series, sender_snapshot
from conformance.probes.metrics.remote_write.watch import (
    remote_scrape_interval, sender_log, sender_window, stop_if_never_delivered,
)
from conformance.core.hops import hop
from conformance.clients.prometheus import PrometheusClient
from conformance.probes.metrics.receiver import receiver_or_fail
from conformance.probes.metrics.remote_intent import require_remote_intent

pytestmark = pytest.mark.metrics

# A remote sample reaches the primary within one scrape interval plus the queue's
# batch_send_deadline (5 s by default) plus query slack; 15 s covers the last two.
FRESHNESS_MARGIN = 15.0
# Series show up after the first scrape and the first send.
SERIES_WAIT = timing.forwarded()
# How long a window of sender counters is judged for failures and growing lag: at least one scrape
# interval plus one batch_send_deadline (Prometheus' default 5 s), or a window can hold no send
# at all and a failing queue looks healthy (at the chart's 30 s interval, 5 of 6 times). The window
# that just ended, from the sender's own scrapes of itself, when it has them; else one watched.
SENDER_WINDOW = 5.0
SEND_DEADLINE = 5.0
# Prometheus's /-/ready answers at once when it runs (see LOKI_READY_WAIT in test_logs for the bound).
PROMETHEUS_READY_WAIT = timing.answers()


@pytest.mark.hop("prometheus[{primary}]")
@pytest.mark.requirement("must")
def test_primary_prometheus_is_ready(primary, primary_prometheus):
    """The primary Prometheus answers ready; unreachable, it is down and the metrics checks stop at once."""
    def probe():
        ready, body = primary_prometheus.ready()
        if not ready:
            raise NotYet(f"GET /-/ready answered 503: {body or '(empty body)'}")

    eventually(probe, hop=f"conformance → {primary.name} Prometheus", what="Prometheus not ready",
               wait=PROMETHEUS_READY_WAIT, unreachable_is_final=True)


@pytest.mark.hop("receiver[{primary}]", needs=["prometheus[{primary}]"])
@pytest.mark.requirement("must")
def test_primary_accepts_remote_write(primary, primary_prometheus, read_only, access):
    """The primary's Prometheus runs the remote-write receiver."""
    receiver_or_fail(primary, primary_prometheus, read_only, f"remote Prometheus → {primary.name} Prometheus", access)


@pytest.mark.hop("metrics[{remote}]", needs=["prometheus[{primary}]", "receiver[{primary}]", "sender[{remote}]"])
@pytest.mark.requirement("must")
def test_remote_series_reach_the_primary(remote, primary, primary_prometheus, access, read_only, record_property):
    """Every remote cluster's series are on the primary with <label>=<name> (the external label of its Prometheus
    resource)."""
    name = hop("metrics", remote, primary)
    receiver_or_fail(primary, primary_prometheus, read_only, name, access)
    label = require_remote_intent(access, remote, primary, name, record_property)  # at once, before any wait
    sender, log = access.client_or_none(remote, "prometheus", PrometheusClient), sender_log(access, remote)
    started = time.monotonic()

    def probe():
        result = primary_prometheus.query(f'count(up{{{label}="{remote.name}"}})')
        if not result:
            stop_if_never_delivered(sender, log, name)
            clusters = sorted({s["metric"].get(label, "") for s in primary_prometheus.query(f"count by ({label}) (up)")})
            raise NotYet(f"no up{{{label}=\"{remote.name}\"}} on the primary; {label} values there: {clusters}")
        return int(float(result[0]["value"][1]))

    count = eventually(probe, hop=name, what=f"no series with {label}={remote.name}", wait=SERIES_WAIT,
                       diagnose=lambda: explain_missing_series(sender, remote.name, log, label))
    record_property("remote_targets_on_primary", count)
    record_property("remote_series_wait_seconds", round(time.monotonic() - started, 2))


@pytest.mark.hop(needs=["prometheus[{primary}]", "receiver[{primary}]", "metrics[{remote}]", "sender[{remote}]"])
@pytest.mark.requirement("must")
def test_remote_series_are_fresh(remote, primary, primary_prometheus, access, record_property):
    """The newest remote sample on the primary is younger than the remote's scrape interval plus a margin."""
    sender, log = access.client_or_none(remote, "prometheus", PrometheusClient), sender_log(access, remote)
    interval = remote_scrape_interval(sender)
    margin = FRESHNESS_MARGIN * timeout_scale()  # slow CI sends late as well as answering late
    limit = interval + margin
    name = hop("metrics", remote, primary)
    label = require_remote_intent(access, remote, primary, name, record_property)

    def probe():
        result = primary_prometheus.query(f'max(timestamp(up{{{label}="{remote.name}"}}))')
        if not result:
            raise NotYet(f"no up{{{label}=\"{remote.name}\"}} on the primary")
        evaluated_at, newest = result[0]["value"][0], float(result[0]["value"][1])
        return evaluated_at - newest

    age = eventually(probe, hop=name, what=f"no series with {label}={remote.name}", wait=SERIES_WAIT,
                     diagnose=lambda: explain_missing_series(sender, remote.name, log, label))
    record_property("remote_write_sample_age_seconds", round(age, 2))
    record_property("remote_scrape_interval_seconds", interval)
    if age > limit:
        raise Failed(name, f"the newest sample with {label}={remote.name} is {age:.0f} s old; "
                           f"expected under {limit:.0f} s (scrape interval {interval:.0f} s + {margin:.0f} s)",
                     explain_missing_series(sender, remote.name, log, label))


@pytest.mark.hop("sender[{remote}]")  # its own key: a receiver found disabled does not silence the sender's account
@pytest.mark.requirement("should")
def test_remote_write_sender_is_healthy(remote, primary, access, record_property):
    """The remote's remote-write queues fail and drop nothing, and their lag does not grow."""
    sender = PrometheusClient(access.endpoint(remote, "prometheus").http)
    name = hop("metrics", remote, primary)
    log = sender_log(access, remote)
    before = sender_snapshot(sender)
    if not before.queues:
        raise Failed(name, f"nothing is sent: the {remote.name} Prometheus has no remote_write queue")
    stop_if_never_delivered(sender, log, name)  # no window needed: nothing ever left
    # A slow CI needs a longer look, like a longer wait; never shorter than one scrape and send.
    window = max(SENDER_WINDOW * timeout_scale(), remote_scrape_interval(sender) + SEND_DEADLINE)
    before, after, window, evidence = sender_window(sender, window)
    record_property("remote_write_sender_evidence", evidence)
    problems, lags = [], []
    for url, q in after.queues.items():
        b = before.queues.get(url)
        if b is None:
            continue
        failed, retried, dropped = q.failed - b.failed, q.retried - b.retried, q.dropped - b.dropped
        if failed > 0:
            problems.append(f"{failed:.0f} samples failed to {url} (non-recoverable; last error: "
                            f"{describe_last_error(log, url)})")
        if retried > 0:
            problems.append(f"{retried:.0f} samples retried to {url} (last error: {describe_last_error(log, url)})")
        if dropped > 0:
            problems.append(f"{dropped:.0f} samples dropped for {url}")
        lag_before, lag_after = before.lag(b), after.lag(q)
        if lag_before is None or lag_after is None:
            continue  # nothing sent yet: there is no lag to measure (a lag from a zero timestamp is from 1970)
        lags.append(lag_after)
        # Lag grows by the window when nothing leaves; a healthy queue stays within one send deadline.
        if lag_after > lag_before + window / 2 and lag_after > 30:
            problems.append(f"lag to {url} grew from {lag_before:.0f} s to {lag_after:.0f} s")
    record_property("remote_write_lag_seconds", round(max(lags, default=0.0), 2))
    if problems:
        raise Failed(name, f"in {window:.0f} s ({evidence}): " + "; ".join(problems),
                     "counters: " + ", ".join(f"{u}: attempted={q.attempted:.0f} failed={q.failed:.0f} "
                                               f"retried={q.retried:.0f} dropped={q.dropped:.0f} pending={q.pending:.0f} "
                                               f"shards={q.shards:.0f}" for u, q in after.queues.items()))
