"""The Prometheus client against two real Prometheus processes, and the remote-write facts it relies on."""

from __future__ import annotations

import pytest

from conformance.clients.prometheus import RECEIVER_DISABLED_TEXT, PrometheusClient
from conformance.eventually import NotYet, Wait, eventually
from conformance.http import APIError, HTTPService


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

    # Remote write ships within batch_send_deadline (1 s) once the WAL watcher starts; seen at ~6 s on 2.42.
    return eventually(probe, hop="remote → primary", what="no remote series", wait=Wait(timeout=30, delay=0.2, max_delay=1))


def test_remote_series_arrive_with_the_remote_cluster_label(primary):
    [sample] = wait_for_remote_series(primary)
    assert sample["metric"]["cluster"] == "workstation"
    assert sample["metric"]["job"] == "prometheus"
    assert sample["value"][1] == "1"


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


def test_status_endpoints(primary):
    assert primary.flags()["web.enable-remote-write-receiver"] == "true"
    assert primary.buildinfo()["version"]
    assert "storageRetention" in primary.runtimeinfo()
    assert "headStats" in primary.tsdb_status()
    assert "cluster: oke" in primary.config_yaml()
    assert primary.ready() == (True, "Prometheus Server is Ready.")


def test_receiver_probe_tells_enabled_from_disabled(primary, remote):
    on, off = primary.probe_receiver(), remote.probe_receiver()
    assert on.enabled and "answered 400" in on.evidence  # an empty body is rejected, so nothing is written
    assert not off.enabled
    assert RECEIVER_DISABLED_TEXT in off.evidence


def test_receiver_from_flags_agrees_with_the_probe(primary, remote):
    assert primary.receiver_from_flags().enabled
    assert not remote.receiver_from_flags().enabled


def test_a_bad_query_raises_with_prometheus_error_body(primary):
    with pytest.raises(APIError) as e:
        primary.query("sum(")
    assert e.value.status == 400
    assert '"errorType":"bad_data"' in e.value.body
