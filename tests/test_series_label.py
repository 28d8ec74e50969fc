"""The label that tells a cluster's series apart, read from its Prometheus resource (issue 18): a user's stack naming
it otherwise (`k8s_cluster`) is queried by that name, and where it cannot be read the suite's default says why."""

from __future__ import annotations

from types import SimpleNamespace

import yaml

from conformance.core.access import NoKubeAccess
from conformance.probes.alerting.alerts import watchdog_clusters
from conformance.probes.kubebench import pushes as kb
from conformance.probes.kube_state_metrics.target import Canary, primary_matcher, why_not_described
from conformance.probes.metrics.promql import on_primary
from conformance.probes.metrics.series_label import series_label
from tests.fakes.kubeapi import FakeKubeAPI
from tests.test_discovery import access_for, kps_prometheus

CR = "Prometheus observability/kps-kube-prometheus-stack-prometheus"


def with_labels(api: FakeKubeAPI, labels: dict[str, str]) -> None:
    """kube-prometheus-stack as release kps in observability (tests/test_discovery.py), its resource's externalLabels."""
    kps_prometheus(api)
    api.add_prometheus("observability", "kps-kube-prometheus-stack-prometheus", spec={"externalLabels": labels})


def test_a_user_named_label_is_read_from_the_resource_and_queried(tmp_path) -> None:
    with FakeKubeAPI("oke") as api:
        with_labels(api, {"k8s_cluster": "oke", "region": "eu"})
        access, cluster = access_for(tmp_path, api)
        label = series_label(access, cluster)
    assert (label.name, label.where) == ("k8s_cluster", f"{CR} spec.externalLabels.k8s_cluster")
    assert on_primary(cluster, label.name) == 'k8s_cluster=""'
    assert on_primary(SimpleNamespace(is_primary=False, name="workstation"), label.name) == 'k8s_cluster="workstation"'


def test_a_resource_labelling_the_cluster_otherwise_leaves_the_default_saying_why(tmp_path) -> None:
    with FakeKubeAPI("oke") as api:
        with_labels(api, {"cluster": "okee"})
        access, cluster = access_for(tmp_path, api)
        label = series_label(access, cluster)
    assert label.name == "cluster"
    assert label.where == (f"the suite's default: {CR} labels its series cluster=okee ({CR} spec.externalLabels.cluster);"
                           " the topology names the cluster oke")


def test_an_unreadable_resource_leaves_the_default_saying_why(tmp_path) -> None:
    with FakeKubeAPI("oke") as api:
        api.removed_groups.add("monitoring.coreos.com")
        api.add_stack_services(prometheus="http://127.0.0.1:9")
        access, cluster = access_for(tmp_path, api)
        label = series_label(access, cluster)
    assert label.name == "cluster"
    assert label.where.startswith("the suite's default: the Prometheus resources of oke cannot be read: the API server "
                                  "serves no monitoring.coreos.com/v1 prometheuses")


class Primary:
    name = "oke Prometheus"

    def __init__(self, series):
        self.series = series

    def query(self, q):
        return self.series


def test_the_diagnoses_name_the_label_read() -> None:
    canary = Canary("workstation", "conformance-x", "canary")
    assert primary_matcher(canary, False, "k8s_cluster") == {"k8s_cluster": "workstation"}
    primary = Primary([{"metric": {"k8s_cluster": "other"}}])
    assert why_not_described(None, primary, canary, False, label="k8s_cluster").startswith(
        "the primary has kube_pod_info for the canary with k8s_cluster=other, not workstation")
    am = SimpleNamespace(alerts=lambda q: [{"labels": {"k8s_cluster": "workstation"}, "status": {"state": "active"}}])
    assert watchdog_clusters(am, "k8s_cluster") == {"workstation": "active"}
    assert watchdog_clusters(am) == {"": "active"}


def test_the_kubebench_diagnosis_names_the_label_read() -> None:
    on_cluster = [{"__name__": "kube_bench_total_pass", "job": "kube-bench", "node": "workstation-control-plane"}]
    words = kb.why_no_totals([], on_cluster, None, "workstation", "oke", "kube-bench", "k8s_cluster")
    assert words == ("the workstation Prometheus has 1 kube-bench series but the oke Prometheus none with "
                     "k8s_cluster=workstation: its remote_write does not carry them")
    assert "cluster=workstation" in kb.why_no_totals([], on_cluster, None, "workstation", "oke", "kube-bench")


class LoadedConfig:
    """A Prometheus as series_label asks it on an endpoints cluster: only its loaded configuration."""

    name = "workstation Prometheus"

    def __init__(self, labels: dict[str, str]):
        self.labels = labels

    def config_yaml(self) -> str:
        return yaml.safe_dump({"global": {"external_labels": self.labels}})


class EndpointsAccess:
    def __init__(self, prom):
        self.prom = prom

    def kube(self, cluster):
        raise NoKubeAccess(f"cluster {cluster.name} has provider endpoints: no Kubernetes API access")

    def client_or_none(self, cluster, service, client):
        return self.prom


WORKSTATION = SimpleNamespace(name="workstation", is_primary=False)
UNREAD = ("the Prometheus resource of workstation cannot be read: cluster workstation has provider endpoints: "
          "no Kubernetes API access")


def test_on_endpoints_the_label_is_the_one_the_prometheus_loaded() -> None:
    label = series_label(EndpointsAccess(LoadedConfig({"k8s_cluster": "workstation", "region": "eu"})), WORKSTATION)
    assert (label.name, label.where) == (
        "k8s_cluster", f"the workstation Prometheus global.external_labels.k8s_cluster (/api/v1/status/config; {UNREAD})")


def test_on_endpoints_a_prometheus_labelling_the_cluster_otherwise_leaves_the_default_saying_why() -> None:
    label = series_label(EndpointsAccess(LoadedConfig({"k8s_cluster": "workstaton"})), WORKSTATION)
    assert (label.name, label.where) == (
        "cluster", f"the suite's default: {UNREAD}; the workstation Prometheus loaded no external label with the value "
                   "workstation alone (global.external_labels: k8s_cluster=workstaton)")
