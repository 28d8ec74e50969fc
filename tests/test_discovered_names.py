"""The checks read the names discovery found, not the bring-up's: kube-state-metrics' scrape pool, the event
exporter's namespace for the probe Event (docs/real-stack.md#discovery)."""

from __future__ import annotations

import pytest

from conformance.core.discovery import Ambiguous, NotFound
from conformance.probes.events.probe_event import probe_namespace
from conformance.probes.kube_state_metrics.target import TargetState, cluster_ksm_job, describe_targets, ksm_job
from conformance.probes.platform.scrape_jobs import CHART_MONITORS, chart_release
from conformance.core.stack import stack_namespace
from tests.fakes.kubeapi import FakeKubeAPI
from tests.test_discovery import access_for, event_exporter_chart, ksm_chart


def test_the_bring_up_pool_is_the_chart_monitor_s():
    monitor = next(m for m in CHART_MONITORS if m.job == "kube-state-metrics")
    assert ksm_job().monitor == f"serviceMonitor/{stack_namespace()}/{monitor.name.format(release=chart_release(), fullname=chart_release())}"


def test_kube_state_metrics_under_another_release_is_looked_for_in_its_own_pool(tmp_path):
    with FakeKubeAPI("oke") as api:
        ksm_chart(api)
        access, oke = access_for(tmp_path, api)
        job = cluster_ksm_job(access, oke)
    assert job.monitor == "serviceMonitor/observability/kps-kube-state-metrics"
    said = describe_targets(TargetState(0, [], 0), "oke Prometheus", job)
    assert said.startswith("the oke Prometheus has no kube-state-metrics target (scrape pool "
                           "serviceMonitor/observability/kps-kube-state-metrics/0)")


def test_kube_state_metrics_not_found_keeps_the_bring_up_pool(tmp_path):
    with FakeKubeAPI("oke") as api:
        access, oke = access_for(tmp_path, api)
        assert cluster_ksm_job(access, oke) == ksm_job()


def test_two_kube_state_metrics_stop_the_check_in_one_line(tmp_path):
    with FakeKubeAPI("oke") as api:
        ksm_chart(api)
        ksm_chart(api, namespace="team-a", release="team")
        access, oke = access_for(tmp_path, api)
        with pytest.raises(Ambiguous, match=r"^oke kube-state-metrics: 2 candidates in any namespace: "
                                            r"observability/kps-kube-state-metrics:8080 .*services.kube-state-metrics"):
            cluster_ksm_job(access, oke)


def test_the_probe_event_goes_where_the_exporter_runs(tmp_path):
    with FakeKubeAPI("oke") as api:
        event_exporter_chart(api)
        access, oke = access_for(tmp_path, api)
        assert probe_namespace(access, oke) == "events"


def test_no_exporter_leaves_the_events_check_not_observed_naming_what_was_looked_for(tmp_path):
    with FakeKubeAPI("oke") as api:
        access, oke = access_for(tmp_path, api)
        with pytest.raises(NotFound) as caught:
            probe_namespace(access, oke)
    assert str(caught.value).startswith(
        "oke event exporter: not found: no Deployment monitoring/kubernetes-event-exporter (the bring-up's name) and no "
        "Deployments labelled app.kubernetes.io/name=kubernetes-event-exporter (Bitnami kubernetes-event-exporter "
        "chart) in any namespace; name it in topology")


def test_the_pushgateway_under_another_release_is_looked_for_in_its_own_pool(tmp_path):
    from conformance.probes.kubebench.pushes import pushgateway_pool
    from tests.test_discovery import pushgateway_chart
    with FakeKubeAPI("oke") as api:
        pushgateway_chart(api)
        access, oke = access_for(tmp_path, api)
        spec = access.located(oke, "pushgateway").spec
    assert pushgateway_pool(spec) == "serviceMonitor/bench/pgw-prometheus-pushgateway/0"
    assert pushgateway_pool() == "serviceMonitor/monitoring/prometheus-pushgateway/0"  # the bring-up's
