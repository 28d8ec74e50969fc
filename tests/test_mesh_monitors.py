"""The mesh checks' monitors on a stack under a user's own names: the bring-up's, else Istio's sample (or one of its
shape) in any namespace; none is the bring-up's pool with what was looked for, two the Prometheus selects one line."""

from __future__ import annotations

import pytest

from conformance.core.discovery import Ambiguous
from conformance.probes.mesh.monitors import ENVOY, ISTIOD, mesh_monitor
from conformance.probes.mesh.scrape_pools import pools_scraping
from tests.fakes.kubeapi import FakeKubeAPI
from tests.proving_kube import kps_prometheus_spec
from tests.test_discovery import access_for

# istio/istio 1.29.6 samples/addons/extras/prometheus-operator.yaml, the fields the rules and the operator read.
ISTIO_ENVOY_POOL = "podMonitor/istio-system/envoy-stats-monitor/0"
ISTIO_ISTIOD_POOL = "serviceMonitor/istio-system/istio-component-monitor/0"


def istio_sample_monitors(api: FakeKubeAPI, release: str = "istio", namespace: str = "istio-system") -> None:
    """Istio's sample PodMonitor and ServiceMonitor; `release` is the label a user relabels to the one their
    Prometheus selects (the sample ships release: istio, which kube-prometheus-stack's selector leaves out)."""
    api.add_namespace(namespace)
    api.add_pod_monitor(namespace, "envoy-stats-monitor", labels={"monitoring": "istio-proxies", "release": release},
                        spec={"namespaceSelector": {"any": True}, "jobLabel": "envoy-stats",
                              "selector": {"matchExpressions": [{"key": "istio-prometheus-ignore",
                                                                 "operator": "DoesNotExist"}]},
                              "podMetricsEndpoints": [{"path": "/stats/prometheus", "interval": "15s"}]})
    api.add_service_monitor(namespace, "istio-component-monitor",
                            labels={"monitoring": "istio-components", "release": release},
                            spec={"jobLabel": "istio", "targetLabels": ["app"], "namespaceSelector": {"any": True},
                                  "selector": {"matchExpressions": [{"key": "istio", "operator": "In",
                                                                     "values": ["pilot"]}]},
                                  "endpoints": [{"port": "http-monitoring", "interval": "15s"}]})


def test_istios_sample_monitors_are_found_in_any_namespace(tmp_path) -> None:
    with FakeKubeAPI("oke") as api:
        istio_sample_monitors(api, release="kps")
        access, oke = access_for(tmp_path, api)
        envoy, istiod = mesh_monitor(access, oke, ENVOY), mesh_monitor(access, oke, ISTIOD)
    assert (envoy.pool, envoy.how) == (ISTIO_ENVOY_POOL, "monitoring=istio-proxies")
    assert (istiod.pool, istiod.how) == (ISTIO_ISTIOD_POOL, "monitoring=istio-components")


def test_a_monitor_of_the_same_shape_under_another_name_is_found_by_its_endpoint(tmp_path) -> None:
    with FakeKubeAPI("oke") as api:
        api.add_pod_monitor("mesh", "sidecars", labels={"release": "kps"},
                            spec={"podMetricsEndpoints": [{"port": "http-envoy-prom", "path": "/stats/prometheus"}]})
        access, oke = access_for(tmp_path, api)
        found = mesh_monitor(access, oke, ENVOY)
    assert (found.pool, found.how) == ("podMonitor/mesh/sidecars/0", "its endpoint")


def test_the_bring_ups_own_monitor_wins(tmp_path) -> None:
    with FakeKubeAPI("oke") as api:
        istio_sample_monitors(api)
        api.add_pod_monitor("monitoring", "envoy-stats", labels={"release": "kube-prometheus-stack"})
        access, oke = access_for(tmp_path, api)
        found = mesh_monitor(access, oke, ENVOY)
    assert (found.pool, found.how) == ("podMonitor/monitoring/envoy-stats/0", "bring-up name")


def test_no_monitor_keeps_the_bring_ups_pool_saying_what_was_looked_for(tmp_path) -> None:
    with FakeKubeAPI("oke") as api:
        access, oke = access_for(tmp_path, api)
        found = mesh_monitor(access, oke, ISTIOD)
    assert found.pool == "serviceMonitor/monitoring/istiod/0"
    assert found.how == ("bring-up name; not found: no ServiceMonitor monitoring/istiod and no ServiceMonitor labelled "
                         "monitoring=istio-components (Istio's sample) or scraping port http-monitoring in any namespace")


def test_the_one_the_prometheus_selects_of_two_is_taken_and_two_selected_are_one_line(tmp_path) -> None:
    with FakeKubeAPI("oke") as api:
        api.add_prometheus("observability", "kps-kube-prometheus-stack-prometheus", spec=kps_prometheus_spec("oke", True))
        api.add_service("observability", "prometheus-operated", port=9090, port_name="web")
        istio_sample_monitors(api)  # release: istio, not selected
        api.add_pod_monitor("mesh", "sidecars", labels={"release": "kps"},
                            spec={"podMetricsEndpoints": [{"path": "/stats/prometheus"}]})
        access, oke = access_for(tmp_path, api)
        assert mesh_monitor(access, oke, ENVOY).pool == "podMonitor/mesh/sidecars/0"
        api.add_pod_monitor("team-a", "envoy", labels={"release": "kps"},
                            spec={"podMetricsEndpoints": [{"path": "/stats/prometheus"}]})
        with pytest.raises(Ambiguous) as caught:
            mesh_monitor(access, oke, ENVOY)
    assert str(caught.value) == (
        "oke Envoy PodMonitor: 2 candidates in any namespace: PodMonitor mesh/sidecars (its endpoint), PodMonitor "
        "team-a/envoy (its endpoint); the check cannot tell which scrapes the mesh: leave one selected by the "
        "cluster's Prometheus resource")


class Targets:
    """A Prometheus answering only /api/v1/targets' active targets."""

    def __init__(self, *targets: dict) -> None:
        self.targets = list(targets)

    def active_targets(self) -> list[dict]:
        return self.targets


@pytest.mark.parametrize("target, envoy, istiod", [
    # Istio's annotations: injected pods' merged metrics at :15020/stats/prometheus, istiod's at :15014/metrics
    ({"scrapePool": "kubernetes-pods", "scrapeUrl": "http://10.0.0.5:15020/stats/prometheus"}, True, False),
    ({"scrapePool": "kubernetes-pods", "scrapeUrl": "http://10.0.0.9:15014/metrics"}, False, True),
    ({"scrapePool": "istiod", "scrapeUrl": "http://10.0.0.9:8080/metrics",
      "discoveredLabels": {"__meta_kubernetes_pod_label_app": "istiod"}}, False, True),
    ({"scrapePool": "node", "scrapeUrl": "http://10.0.0.2:9100/metrics"}, False, False),
])
def test_a_pool_of_the_users_own_is_found_by_what_its_targets_scrape(target, envoy, istiod) -> None:
    prometheus = Targets(target, {"scrapePool": "apiserver", "scrapeUrl": "https://10.0.0.1:6443/metrics"})
    assert pools_scraping(prometheus, ENVOY) == ([target["scrapePool"]] if envoy else [])
    assert pools_scraping(prometheus, ISTIOD) == ([target["scrapePool"]] if istiod else [])
