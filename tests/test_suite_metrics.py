"""The metrics and platform suites against real Prometheus processes, healthy and with each fault."""

from __future__ import annotations

import time

import pytest

from conformance.clients.prometheus import PrometheusClient
from conformance.core.http import HTTPService
from conformance.probes.metrics.remote_write import past_snapshots, sender_snapshot
from suites.test_metrics import FRESHNESS_MARGIN, SERIES_WAIT
from tests.fakes.server import FakeServer, Response
from tests.proving_ground import STACK_TIMING, PrometheusPair, free_port, start_pair, start_prometheus
from tests.suite_runner import run_suites, write_topology

REMOTE_SERIES = "suites.test_metrics::test_remote_series_reach_the_primary[workstation]"
FRESH = "suites.test_metrics::test_remote_series_are_fresh[workstation]"
SENDER = "suites.test_metrics::test_remote_write_sender_is_healthy[workstation]"
READY = "suites.test_metrics::test_primary_prometheus_is_ready"


def endpoints_topology(folder, primary_url: str, remote_url: str | None):
    clusters = [{"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": primary_url}}]
    remote = {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"prometheus": remote_url}}
    clusters.append(remote if remote_url else {**remote, "services": {"prometheus": primary_url}})
    return write_topology(folder, clusters)


@pytest.fixture
def pair(tmp_path) -> PrometheusPair:
    p = start_pair(tmp_path / "prom")
    yield p
    p.stop()


def test_healthy_pair_passes_every_metrics_check_and_records_measurements(tmp_path, prometheus_pair):
    topo = endpoints_topology(tmp_path, prometheus_pair.primary.url, prometheus_pair.remote.url)
    run = run_suites(tmp_path, "--topology", str(topo), "-m", "metrics")
    assert run.code == 0, run.output
    age = float(run.properties(FRESH)["remote_write_sample_age_seconds"])
    # Scrape interval 1 s and batch_send_deadline 1 s in the proving ground: a few seconds at most.
    assert 0 <= age < 5
    assert run.properties(FRESH)["remote_scrape_interval_seconds"] == "1.0"
    assert run.properties(SENDER)["requirement"] == "should"
    assert run.suite_seconds < 60


def test_wrong_external_label_is_named_in_the_diagnosis(tmp_path):
    primary = start_prometheus("primary", tmp_path / "p", cluster="oke", receiver=True)
    remote = start_prometheus("remote", tmp_path / "r", cluster="workstaton", remote_write_url=f"{primary.url}/api/v1/write")
    try:
        topo = endpoints_topology(tmp_path, primary.url, remote.url)
        run = run_suites(tmp_path, "--topology", str(topo), "-k", "reach_the_primary", "--timeout-scale", "0.1")
    finally:
        remote.stop()
        primary.stop()
    failure = run.failure(REMOTE_SERIES)
    assert "workstation Prometheus → oke Prometheus (remote_write): no series with cluster=workstation after" in failure
    assert "the workstation Prometheus sends cluster=workstaton (global.external_labels); expected cluster=workstation" in failure
    assert "cluster values there: ['', 'workstaton']" in failure  # what the primary does have
    assert run.properties(REMOTE_SERIES)["outcome"] == "timed_out"


def test_remote_without_remote_write_says_nothing_was_sent(tmp_path):
    primary = start_prometheus("primary", tmp_path / "p", cluster="oke", receiver=True)
    remote = start_prometheus("remote", tmp_path / "r", cluster="workstation")
    try:
        topo = endpoints_topology(tmp_path, primary.url, remote.url)
        run = run_suites(tmp_path, "--topology", str(topo), "-k", "reach_the_primary", "--timeout-scale", "0.05")
    finally:
        remote.stop()
        primary.stop()
    assert "nothing was sent: the workstation Prometheus has no remote_write queue" in run.failure(REMOTE_SERIES)


def wait_for_failed_sends(remote, timeout: float = 120) -> None:
    """Until the sender counts failed samples and its own scrapes hold them (evidence, not a clock)."""
    sender = PrometheusClient(HTTPService("workstation Prometheus", remote.url))
    deadline = time.monotonic() + timeout
    while not any(q.failed for q in sender_snapshot(sender).queues.values()):
        assert time.monotonic() < deadline, f"the sender counted no failed sample in {timeout} s"
        time.sleep(0.2)
    remote.wait_for_own_past()


def test_disabled_receiver_fails_the_series_check_at_once_and_the_sender_reports_failures(tmp_path):
    primary = start_prometheus("primary", tmp_path / "p", cluster="oke", receiver=False)
    remote = start_prometheus("remote", tmp_path / "r", cluster="workstation", remote_write_url=f"{primary.url}/api/v1/write")
    try:
        wait_for_failed_sends(remote)  # the sender has tried, and failed: what a running stack looks like
        topo = endpoints_topology(tmp_path, primary.url, remote.url)
        run = run_suites(tmp_path, "--topology", str(topo), "-m", "metrics", "-k", "reach_the_primary or sender", "--strict")
    finally:
        remote.stop()
        primary.stop()
    series = run.failure(REMOTE_SERIES)
    assert "the remote-write receiver is disabled; set prometheus.prometheusSpec.enableRemoteWriteReceiver" in series
    assert run.properties(REMOTE_SERIES)["outcome"] == "precondition"
    assert "samples failed to http://127.0.0.1:" in run.failure(SENDER)
    assert run.code == 1  # --strict: the failing `should` fails the run too


def test_a_failing_should_check_alone_does_not_fail_the_run(tmp_path):
    primary = start_prometheus("primary", tmp_path / "p", cluster="oke", receiver=False)
    remote = start_prometheus("remote", tmp_path / "r", cluster="workstation", remote_write_url=f"{primary.url}/api/v1/write")
    try:
        wait_for_failed_sends(remote)
        topo = endpoints_topology(tmp_path, primary.url, remote.url)
        run = run_suites(tmp_path, "--topology", str(topo), "-k", "sender")
    finally:
        remote.stop()
        primary.stop()
    assert "samples failed" in run.failure(SENDER)  # reported in JUnit
    assert run.code == 0  # but only --strict turns a `should` into a failed run


@pytest.mark.parametrize("receiver", [True, False], ids=["healthy", "receiver-off"])
def test_the_sender_is_judged_at_once_from_its_own_scrapes_of_itself(tmp_path, receiver):
    """The window that just ended, read back from the sender's TSDB: no wait of one scrape and send."""
    primary = start_prometheus("primary", tmp_path / "p", cluster="oke", receiver=receiver)
    remote = start_prometheus("remote", tmp_path / "r", cluster="workstation", remote_write_url=f"{primary.url}/api/v1/write")
    try:
        topo = endpoints_topology(tmp_path, primary.url, remote.url)
        for _ in range(3):  # a loaded machine can leave the window unread (a late scrape, a slow query): the check
            remote.wait_for_own_past()  # then watches instead, rightly; the window: max(5 s, 1 s scrape + 1 s deadline)
            run = run_suites(tmp_path, "--topology", str(topo), "-k", "sender")
            if run.properties(SENDER)["remote_write_sender_evidence"] == "its own scrapes":
                break
    finally:
        remote.stop()
        primary.stop()
    assert run.properties(SENDER)["remote_write_sender_evidence"] == "its own scrapes", run.output[-2000:]
    if receiver:
        assert run.properties(SENDER)["outcome"] == "passed", run.failure(SENDER)
    else:  # the 404s of the window before the run, as counted by the sender itself
        failure = run.failure(SENDER)
        assert failure.startswith("workstation Prometheus → oke Prometheus (remote_write): in ") and \
            " s (its own scrapes): " in failure and "samples failed to http://127.0.0.1:" in failure, failure


def test_a_sender_that_does_not_scrape_itself_is_watched_for_one_window(tmp_path):
    primary = start_prometheus("primary", tmp_path / "p", cluster="oke", receiver=False)
    remote = start_prometheus("remote", tmp_path / "r", cluster="workstation", self_scrape=False,
                              scrape_jobs=[{"job_name": "primary", "static_configs": [{"targets": [primary.url[7:]]}]}],
                              remote_write_url=f"{primary.url}/api/v1/write")  # samples to send, none of its own
    try:
        sender = PrometheusClient(HTTPService("workstation Prometheus", remote.url))
        assert past_snapshots(sender, 6) == []
        topo = endpoints_topology(tmp_path, primary.url, remote.url)
        run = run_suites(tmp_path, "--topology", str(topo), "-k", "sender")
    finally:
        remote.stop()
        primary.stop()
    assert run.properties(SENDER)["remote_write_sender_evidence"] == "watched"
    failure = run.failure(SENDER)
    assert " s (watched): " in failure and "samples failed to http://127.0.0.1:" in failure, failure


def test_the_past_is_the_answering_process_own():
    """Of the instances the sender scraped, the one whose counters lead to now's; none when none does."""
    from conformance.probes.metrics.remote_write import Past, Queue, SenderSnapshot, matching

    def past(instance: str, **queues: float) -> Past:
        return Past(SenderSnapshot({u: Queue(u, attempted=a) for u, a in queues.items()}), 6, instance)

    now = SenderSnapshot({"a": Queue("a", attempted=10), "b": Queue("b", attempted=5)})
    this, replica = past("this:9090", a=8, b=5), past("replica:9090", a=3, b=1)  # an HA pair: both scraped
    assert matching([replica, this], now) is this  # the one nearest below now
    assert matching([past("x", a=8)], now) is None  # queue b has no past
    assert matching([past("x", a=90, b=5)], now) is None  # counters went back: a restart in the window
    assert matching([], now) is None  # no self-scrape: watched instead


def test_stale_remote_series_fail_freshness_with_the_age(tmp_path, pair):
    topo = endpoints_topology(tmp_path, pair.primary.url, pair.remote.url)
    warm = run_suites(tmp_path, "--topology", str(topo), "-k", "fresh")
    assert warm.code == 0, warm.output
    pair.remote.stop_remote_write()  # the remote keeps running; its last samples on the primary just age
    time.sleep(5)  # past scrape interval (1 s) + margin (15 s x 0.2 = 3 s)
    run = run_suites(tmp_path, "--topology", str(topo), "-k", "fresh", "--timeout-scale", "0.2")
    failure = run.failure(FRESH)
    assert "workstation Prometheus → oke Prometheus (remote_write): the newest sample with cluster=workstation is" in failure
    assert "expected under 4 s (scrape interval 1 s + 3 s)" in failure
    assert float(run.properties(FRESH)["remote_write_sample_age_seconds"]) >= 4
    assert run.properties(FRESH)["outcome"] == "failed"


def test_an_unreachable_remote_is_judged_by_the_chart_scrape_interval():
    from conformance.clients.prometheus import PrometheusClient
    from conformance.core.http import HTTPService, RetryPolicy
    from conformance.probes.metrics.remote_write.watch import CHART_SCRAPE_INTERVAL, remote_scrape_interval

    gone = PrometheusClient(HTTPService("workstation Prometheus", f"http://127.0.0.1:{free_port()}", retry=RetryPolicy(attempts=1)))
    assert remote_scrape_interval(gone) == CHART_SCRAPE_INTERVAL == 30.0
    assert remote_scrape_interval(None) == 30.0


# At the stack's own intervals (issue 8, item 10): kube-prometheus-stack's 30 s scrape interval and
# Prometheus' default 5 s batch send deadline, not the proving ground's 1 s and 1 s. Slow: deselect with -m "not slow".
ONE_ROUND = STACK_TIMING.scrape_interval + STACK_TIMING.send_deadline  # a sample is scraped and sent within this


@pytest.mark.slow
def test_at_the_stacks_intervals_healthy_series_pass_and_stale_ones_fail(tmp_path):
    pair = start_pair(tmp_path / "prom", timing=STACK_TIMING)
    try:
        topo = endpoints_topology(tmp_path, pair.primary.url, pair.remote.url)
        (tmp_path / "healthy").mkdir()
        healthy = run_suites(tmp_path / "healthy", "--topology", str(topo), "-m", "metrics", timeout=300)
        assert healthy.code == 0, healthy.output
        fresh = healthy.properties(FRESH)
        assert fresh["remote_scrape_interval_seconds"] == "30.0"  # read from the sender's config, not assumed
        # The first scrape comes within one interval of start, its send within the deadline: well inside the wait.
        assert float(healthy.properties(REMOTE_SERIES)["remote_series_wait_seconds"]) < ONE_ROUND + 10 < SERIES_WAIT.timeout
        # The newest sample is at most one interval plus one send old, inside interval + margin.
        assert 0 <= float(fresh["remote_write_sample_age_seconds"]) < ONE_ROUND + 2 < 30 + FRESHNESS_MARGIN
        pair.remote.stop_remote_write()
        time.sleep(30 + FRESHNESS_MARGIN + 2)  # past the check's limit at the stack's interval
        (tmp_path / "stale").mkdir()
        stale = run_suites(tmp_path / "stale", "--topology", str(topo), "-k", "fresh", timeout=300)
    finally:
        pair.stop()
    failure = stale.failure(FRESH)
    assert "expected under 45 s (scrape interval 30 s + 15 s)" in failure
    assert float(stale.properties(FRESH)["remote_write_sample_age_seconds"]) >= 45


@pytest.mark.slow
def test_at_the_stacks_intervals_a_disabled_receiver_fails_the_sender_check(tmp_path):
    primary = start_prometheus("primary", tmp_path / "p", cluster="oke", receiver=False, timing=STACK_TIMING)
    remote = start_prometheus("remote", tmp_path / "r", cluster="workstation", timing=STACK_TIMING,
                              remote_write_url=f"{primary.url}/api/v1/write")
    try:
        sender = PrometheusClient(HTTPService("workstation Prometheus", remote.url))
        deadline = time.monotonic() + ONE_ROUND + 10
        while time.monotonic() < deadline and not any(q.failed for q in sender_snapshot(sender).queues.values()):
            time.sleep(1)  # the sender has tried, and failed, once: what a running stack looks like
        topo = endpoints_topology(tmp_path, primary.url, remote.url)
        run = run_suites(tmp_path, "--topology", str(topo), "-m", "metrics", "-k", "reach_the_primary or sender",
                         timeout=300)
    finally:
        remote.stop()
        primary.stop()
    assert run.properties(REMOTE_SERIES)["outcome"] == "precondition"
    # Samples fail once per scrape (every 30 s): the sender's window must span a scrape and a send to see one.
    assert "samples failed to http://127.0.0.1:" in run.failure(SENDER), run.output[-3000:]


def starting_prometheus() -> FakeServer:
    """A Prometheus still replaying its WAL: /-/ready answers 503 "Service Unavailable" (prometheus web/web.go
    testReady), whatever else it is asked."""
    server = FakeServer()
    server.route("GET", r"/-/ready", lambda request: Response(503, "Service Unavailable", "text/plain"))
    return server.start()


@pytest.mark.parametrize("starting, expected", [
    (False, ["conformance → oke Prometheus: oke Prometheus still unreachable when the wait ended",
             "connection refused", "while waiting for: Prometheus not ready"]),
    (True, ["conformance → oke Prometheus: Prometheus not ready", "GET /-/ready answered 503: Service Unavailable"]),
], ids=["nothing listens", "still starting"])
def test_a_primary_prometheus_that_is_not_ready_is_named_by_the_ready_check(tmp_path, starting, expected):
    """The ready check's failing paths: nothing listens at the primary's Prometheus, or it answers not ready."""
    server = starting_prometheus() if starting else None
    url = server.url if server else f"http://127.0.0.1:{free_port()}"
    try:
        topo = endpoints_topology(tmp_path, url, None)
        run = run_suites(tmp_path, "--topology", str(topo), "-k", "primary_prometheus_is_ready",
                         "--timeout-scale", "0.05")
    finally:
        if server:
            server.stop()
    failure = run.failure(READY)
    assert run.properties(READY)["outcome"] == "timed_out", failure
    for part in expected:
        assert part in failure, failure
