"""The Prometheus client against two real Prometheus v3.14.0 processes, and the remote-write facts it relies on.

Every Prometheus fact a check relies on is asserted here against the stack's pinned version (tests/real).
"""

from __future__ import annotations

import pytest

from conformance.clients.prometheus import RECEIVER_DISABLED_TEXT, PrometheusClient
from conformance.core.eventually import NotYet, Wait, eventually
from conformance.core.exposition import parse_samples
from conformance.core.http import APIError, HTTPService
from conformance.probes.metrics.remote_write import sender_snapshot
from conformance.probes.metrics.remote_write.sender import DROPPED, HIGHEST_IN, QUEUE_METRICS
from tests.proving_ground import operator_labels
from tests.real import REGISTRY


@pytest.fixture(scope="module")
def primary(prometheus_pair) -> PrometheusClient:
    return PrometheusClient(HTTPService("oke Prometheus", prometheus_pair.primary.url))


@pytest.fixture(scope="module")
def remote(prometheus_pair) -> PrometheusClient:
    return PrometheusClient(HTTPService("workstation Prometheus", prometheus_pair.remote.url))


def wait_for_remote_series(primary: PrometheusClient) -> list[dict]:
    def probe():
        result = primary.query('up{cluster="workstation"}')
        if not result:
            raise NotYet("no up{cluster=\"workstation\"} on the primary yet")
        return result

    # Remote write ships within batch_send_deadline (1 s here) once the WAL watcher starts.
    return eventually(probe, hop="remote → primary", what="no remote series", wait=Wait(timeout=30, delay=0.2, max_delay=1))


def test_remote_series_arrive_with_the_remote_cluster_label(primary):
    [sample] = wait_for_remote_series(primary)
    assert sample["metric"]["cluster"] == "workstation"
    assert sample["metric"]["job"] == "prometheus"
    assert sample["value"][1] == "1"
    # The operator's own external labels travel too (prometheus-operator v0.93.1 buildExternalLabels).
    assert {k: sample["metric"][k] for k in ("prometheus", "prometheus_replica")} == {
        "prometheus": "monitoring/kube-prometheus-stack-prometheus",
        "prometheus_replica": "prometheus-kube-prometheus-stack-prometheus-0",
    } == operator_labels()


def test_primary_own_series_carry_no_cluster_label_locally(primary):
    """external_labels leave with remote write and federation; the local TSDB never stores them."""
    wait_for_remote_series(primary)
    own = [s for s in primary.query("up") if "cluster" not in s["metric"]]
    assert own, "the primary's own up series should be there without a cluster label"
    assert not primary.query('up{cluster="oke"}')


def test_series_lists_label_sets(primary):
    wait_for_remote_series(primary)
    series = primary.series(['prometheus_build_info{cluster="workstation"}'])
    assert series and series[0]["__name__"] == "prometheus_build_info"


def test_targets_have_pool_url_health_and_last_error(remote):
    def probe():
        targets = remote.active_targets()
        if not targets or targets[0]["health"] == "unknown":
            raise NotYet(f"targets {targets}")
        return targets

    [target] = eventually(probe, hop="h", what="no scraped target", wait=Wait(timeout=10, delay=0.1))
    assert target["scrapePool"] == "prometheus"
    assert target["health"] == "up"
    assert target["lastError"] == ""
    assert target["scrapeUrl"].endswith("/metrics")


def test_the_pair_runs_the_stacks_prometheus(primary, remote):
    pinned = REGISTRY["prometheus"].version.removeprefix("v")  # stack/versions.yaml apps.prometheus
    assert primary.buildinfo()["version"] == remote.buildinfo()["version"] == pinned == "3.14.0"


def test_flags_show_the_receiver_as_the_operator_passes_it(primary, remote):
    """/api/v1/status/flags lists every flag by name without dashes, booleans as "true"/"false"."""
    on, off = primary.flags(), remote.flags()
    assert on["web.enable-remote-write-receiver"] == "true"
    assert off["web.enable-remote-write-receiver"] == "false"  # listed, not absent, when off
    assert on["web.enable-lifecycle"] == "true" and on["web.route-prefix"] == "/"
    assert "remote-write-receiver" not in on.get("enable-feature", "")  # 3.x: a flag, no longer a feature


def test_status_endpoints(primary):
    assert primary.flags()["web.enable-remote-write-receiver"] == "true"
    assert "storageRetention" in primary.runtimeinfo()
    assert "headStats" in primary.tsdb_status()
    assert "cluster: oke" in primary.config_yaml()
    assert primary.ready() == (True, "Prometheus Server is Ready.")


def test_receiver_probe_tells_enabled_from_disabled(primary, remote):
    on, off = primary.probe_receiver(), remote.probe_receiver()
    assert on.enabled and "answered 400" in on.evidence  # an empty body is rejected, so nothing is written
    assert not off.enabled
    assert RECEIVER_DISABLED_TEXT in off.evidence
    # 3.14's exact 404 body (web/api/v1/api.go remoteWrite): it names the flag to set.
    assert off.evidence == ("POST /api/v1/write answered 404: "
                            "remote write receiver needs to be enabled with --web.enable-remote-write-receiver")


def test_sender_metrics_are_the_ones_the_suite_reads(primary, remote):
    """conformance/probes/metrics/remote_write.py's names and the url label, as 3.14 exposes them on the sender's /metrics."""
    wait_for_remote_series(primary)
    samples = parse_samples(remote.http.request("GET", "/metrics").text)
    write_url = f"{primary.http.base_url}/api/v1/write"
    for name in QUEUE_METRICS.values():
        queues = [s.labels for s in samples if s.name == name]
        if name == DROPPED:
            # 3.14: a vector by `reason` (too_old, dropped_series, ...), absent until the first drop; read as 0.
            assert all(q.get("reason") for q in queues), queues
            continue
        assert queues, f"{name} is not on the sender's /metrics"
        assert {q.get("url") for q in queues} == {write_url}, name
        assert all(q.get("remote_name") for q in queues), name
    assert any(s.name == HIGHEST_IN and s.value > 0 for s in samples)
    snap = sender_snapshot(remote)
    [queue] = snap.queues.values()
    assert queue.url == write_url and queue.attempted > 0 and queue.failed == 0 and queue.dropped == 0 and queue.highest_sent > 0


def test_receiver_from_flags_agrees_with_the_probe(primary, remote):
    assert primary.receiver_from_flags().enabled
    assert not remote.receiver_from_flags().enabled


def test_a_bad_query_raises_with_prometheus_error_body(primary):
    with pytest.raises(APIError) as e:
        primary.query("sum(")
    assert e.value.status == 400
    assert '"errorType":"bad_data"' in e.value.body
