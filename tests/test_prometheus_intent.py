"""The Prometheus resource's own intent (issue 18 item 2): monitor selectors as prometheus-operator v0.93 applies them
(nil selects nothing, {} everything, a nil namespace selector only the resource's namespace), external labels as
buildExternalLabels writes them, the receiver's setting; each diagnosis names the label wanted and where it was read."""

from __future__ import annotations

import pytest

from conformance.probes.metrics.label_selector import InvalidSelector, describe, unmet
from conformance.probes.metrics.monitor_selection import require_monitor_selected
from conformance.core.outcomes import PreconditionUnmet
from conformance.probes.metrics.prometheus_intent import (PrometheusIntent, cluster_label, external_labels, monitor_selection,
                                           read_intent, receiver_setting)
from conformance.core.manifests import MANIFESTS
from tests.fakes.kubeapi import FakeKubeAPI
from tests.test_discovery import access_for

CR = "kps-kube-prometheus-stack-prometheus"
KPS = {"serviceMonitorSelector": {"matchLabels": {"release": "kps"}}, "serviceMonitorNamespaceSelector": {},
       "podMonitorSelector": {"matchLabels": {"release": "kps"}}, "podMonitorNamespaceSelector": {}}


def test_selector_semantics_are_apimachinerys() -> None:
    assert unmet(None, {"release": "kps"}) == ["(unset: selects nothing)"]
    assert unmet({}, {}) == [] and describe({}) == "everything ({})"
    assert unmet({"matchLabels": {"release": "kps"}}, {"release": "other"}) == ["release=kps"]
    exprs = {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["dev"]},
                                  {"key": "team", "operator": "Exists"},
                                  {"key": "skip", "operator": "DoesNotExist"},
                                  {"key": "env", "operator": "In", "values": ["prod", "stage"]}]}
    assert unmet(exprs, {"team": "a", "env": "prod"}) == []  # NotIn holds when the label is absent
    assert unmet(exprs, {"tier": "dev", "skip": "1", "env": "qa"}) == [
        "tier not in (dev)", "team", "no skip label", "env in (prod, stage)"]
    with pytest.raises(InvalidSelector):
        unmet({"matchExpressions": [{"key": "a", "operator": "In"}]}, {})


def selection(api: FakeKubeAPI, tmp_path, spec: dict, monitor_labels: dict, kind: str = "PodMonitor",
              namespace: str = "monitoring", ns_labels: dict | None = None):
    api.add_namespace(namespace, labels=ns_labels)
    api.add_prometheus("observability", CR, spec=spec)
    api.add_service("observability", "prometheus-operated", port=9090, port_name="web",
                    labels={"operated-prometheus": "true"})
    add = api.add_pod_monitor if kind == "PodMonitor" else api.add_service_monitor
    add(namespace, "envoy-stats", labels=monitor_labels)
    access, cluster = access_for(tmp_path, api)
    intent = read_intent(access, cluster)
    assert isinstance(intent, PrometheusIntent), intent
    return monitor_selection(access.kube(cluster), intent, kind, namespace, "envoy-stats")


def test_a_monitor_without_the_wanted_label_is_named_with_the_label(tmp_path) -> None:
    with FakeKubeAPI("oke") as api:
        got = selection(api, tmp_path, KPS, {"release": "other"})
    assert got.selected is False
    assert got.text == (f"PodMonitor monitoring/envoy-stats is not selected by Prometheus observability/{CR}: it wants "
                        "release=kps (podMonitorSelector), the monitor has release=other")


def test_an_unset_selector_selects_nothing(tmp_path) -> None:
    with FakeKubeAPI("oke") as api:
        got = selection(api, tmp_path, {**KPS, "serviceMonitorSelector": None}, {"release": "kps"}, kind="ServiceMonitor")
    assert got.selected is False and "its serviceMonitorSelector is unset, which selects no ServiceMonitor" in got.text


def test_an_unset_namespace_selector_selects_the_resources_namespace_only(tmp_path) -> None:
    spec = {k: v for k, v in KPS.items() if k != "podMonitorNamespaceSelector"}
    with FakeKubeAPI("oke") as api:
        got = selection(api, tmp_path, spec, {"release": "kps"})
    assert got.text == (f"PodMonitor monitoring/envoy-stats is not selected by Prometheus observability/{CR}: its "
                        "podMonitorNamespaceSelector is unset, so it selects PodMonitors only in its own namespace "
                        "observability; the monitor is in monitoring")


def test_a_namespace_selector_that_excludes_the_monitors_namespace(tmp_path) -> None:
    spec = {**KPS, "podMonitorNamespaceSelector": {"matchLabels": {"monitoring": "enabled"}}}
    with FakeKubeAPI("oke") as api:
        got = selection(api, tmp_path, spec, {"release": "kps"}, ns_labels={"team": "platform"})
    assert got.text == (f"PodMonitor monitoring/envoy-stats is not selected by Prometheus observability/{CR}: its "
                        "podMonitorNamespaceSelector wants namespaces with monitoring=enabled, namespace monitoring has "
                        "no monitoring label")


def test_a_selected_monitor_says_by_what(tmp_path) -> None:
    with FakeKubeAPI("oke") as api:
        got = selection(api, tmp_path, KPS, {"release": "kps"})
    assert got.selected is True
    assert got.text == (f"PodMonitor monitoring/envoy-stats is selected by Prometheus observability/{CR} "
                        "(podMonitorSelector: release=kps)")


def test_the_check_fails_at_once_or_says_why_it_could_not_judge(tmp_path) -> None:
    recorded: dict[str, object] = {}
    with FakeKubeAPI("oke") as api:
        api.add_prometheus("observability", CR, spec=KPS)
        api.add_service("observability", "prometheus-operated", port=9090, port_name="web")
        api.add_pod_monitor("monitoring", "envoy-stats", labels={"release": "kube-prometheus-stack"})
        access, cluster = access_for(tmp_path, api)
        with pytest.raises(PreconditionUnmet) as e:
            require_monitor_selected(access, cluster, MANIFESTS / "envoy-podmonitor.yaml", "oke Envoy → oke Prometheus",
                                     recorded.__setitem__)
    assert e.value.diagnosis.endswith("it wants release=kps (podMonitorSelector), the monitor has "
                                      "release=kube-prometheus-stack")
    with FakeKubeAPI("oke") as api:  # the bring-up's names, no Prometheus CRD served: the check waits as before
        api.removed_groups.add("monitoring.coreos.com")
        api.add_stack_services(prometheus="http://127.0.0.1:9")
        access, cluster = access_for(tmp_path / "2", api)
        require_monitor_selected(access, cluster, MANIFESTS / "envoy-podmonitor.yaml", "hop", recorded.__setitem__)
    assert str(recorded["monitor_selection"]).startswith("not judged: the Prometheus resources of oke cannot be read")


def intent(spec: dict) -> PrometheusIntent:
    return PrometheusIntent("observability", CR, spec)


def test_external_labels_as_the_operator_writes_them() -> None:
    labels = external_labels(intent({"externalLabels": {"cluster": "workstation", "prometheus": "mine"}}))
    assert labels["prometheus"][0] == f"observability/{CR}"  # reserved: the operator ignores spec's
    assert cluster_label(intent({"externalLabels": {"cluster": "workstation"}}), "workstation") == (
        "cluster", f"Prometheus observability/{CR} spec.externalLabels.cluster")
    assert cluster_label(intent({"externalLabels": {"k8s_cluster": "workstation"}}), "workstation")[0] == "k8s_cluster"
    with pytest.raises(ValueError) as e:
        cluster_label(intent({"externalLabels": {"cluster": "workstatoin"}}), "workstation")
    assert str(e.value) == (f"Prometheus observability/{CR} labels its series cluster=workstatoin (Prometheus "
                            f"observability/{CR} spec.externalLabels.cluster); the topology names the cluster workstation")
    with pytest.raises(ValueError) as e:
        cluster_label(intent({"prometheusExternalLabelName": "cluster", "externalLabels": {"cluster": "workstation"}}),
                      "workstation")
    assert f"cluster=observability/{CR} (Prometheus observability/{CR} spec.prometheusExternalLabelName)" in str(e.value)


def test_the_receivers_setting() -> None:
    assert receiver_setting(intent({"enableRemoteWriteReceiver": True}))[0] is True
    off, why = receiver_setting(intent({"enableFeatures": ["remote-write-receiver"]}))
    assert not off and "a flag Prometheus 3.0 removed; set spec.enableRemoteWriteReceiver: true" in why


def test_the_app_metrics_servicemonitor_is_judged_as_the_mesh_monitors(tmp_path) -> None:
    """The app-metrics part's ServiceMonitor, labelled for the bring-up's release, under a Prometheus of release kps."""
    from conformance.probes.app_metrics.series import MONITOR_FILE
    from conformance.core.manifests import load
    meta = load(MONITOR_FILE)["metadata"]
    recorded: dict[str, object] = {}
    with FakeKubeAPI("oke") as api:
        api.add_prometheus("observability", CR, spec=KPS)
        api.add_service("observability", "prometheus-operated", port=9090, port_name="web")
        api.add_service_monitor(meta["namespace"], meta["name"], labels=meta.get("labels"))
        access, cluster = access_for(tmp_path, api)
        with pytest.raises(PreconditionUnmet) as e:
            require_monitor_selected(access, cluster, MONITOR_FILE, "oke app → oke Prometheus", recorded.__setitem__)
    assert e.value.diagnosis == (f"ServiceMonitor {meta['namespace']}/{meta['name']} is not selected by Prometheus "
                                 f"observability/{CR}: it wants release=kps (serviceMonitorSelector), the monitor has "
                                 f"release={meta['labels']['release']}")


class ReceiverOff:
    """A primary Prometheus whose receiver answers 404 (only what receiver_or_fail asks)."""

    def probe_receiver(self):
        from conformance.clients.prometheus import ReceiverStatus
        return ReceiverStatus(False, "POST /api/v1/write answered 404")


@pytest.mark.parametrize("spec, said", [
    ({"enableFeatures": ["remote-write-receiver"]},
     f"Prometheus observability/{CR} has enableFeatures: [remote-write-receiver], a flag Prometheus 3.0 removed; "
     "set spec.enableRemoteWriteReceiver: true"),
    ({"enableRemoteWriteReceiver": True},
     f"Prometheus observability/{CR} spec.enableRemoteWriteReceiver: true; the running Prometheus has not taken it up"),
])
def test_a_disabled_receiver_names_the_resources_setting(tmp_path, spec, said) -> None:
    from conformance.probes.metrics.receiver import receiver_or_fail
    with FakeKubeAPI("oke") as api:
        api.add_prometheus("observability", CR, spec=spec)
        api.add_service("observability", "prometheus-operated", port=9090, port_name="web")
        access, cluster = access_for(tmp_path, api)
        with pytest.raises(PreconditionUnmet) as e:
            receiver_or_fail(cluster, ReceiverOff(), False, "remote Prometheus → oke Prometheus", access)
    assert e.value.diagnosis.endswith(f"(flag --web.enable-remote-write-receiver) ({said})")


def test_a_remote_write_url_is_elsewhere_only_when_that_is_certain() -> None:
    """Only an address of the primary's is judged: one of none of them (a gateway's, an ingress's), a loopback one (a
    local proxy), a name that does not resolve here or a cluster-local one are recorded, not judged."""
    from conformance.probes.metrics.remote_intent import INSIDE, judge_url
    inside = {"10.96.0.10": "Service monitoring/kps" + INSIDE}
    exposed = {**inside, "172.18.255.200": "Service monitoring/kps (LoadBalancer)"}
    assert judge_url("http://172.18.255.200:9090/api/v1/write", exposed) == (True, "Service monitoring/kps (LoadBalancer)")
    assert judge_url("http://172.18.255.201:9090/api/v1/write", exposed) == (
        None, "172.18.255.201 is an address of none of them: a gateway or an ingress of its own may carry it")
    assert judge_url("http://172.18.255.201:9090/api/v1/write", inside)[0] is None  # a gateway may carry it
    assert judge_url("http://127.0.0.1:9090/api/v1/write", inside) == (
        None, "127.0.0.1 is in the sender's own pod: a local proxy may forward it")  # sigv4 or OAuth sidecars
    assert judge_url("http://prometheus-operated.monitoring.svc:9090/api/v1/write", exposed)[0] is None
    assert judge_url("http://no-such-host.invalid:9090/api/v1/write", exposed)[0] is None


def test_a_remote_resource_without_remote_write_fails_at_once(monkeypatch) -> None:
    """No spec.remoteWrite: the operator renders no remote_write, so no wait brings the series to the primary."""
    from types import SimpleNamespace

    from conformance.probes.metrics import remote_intent
    remote = SimpleNamespace(name="workstation")
    monkeypatch.setattr(remote_intent, "read_intent", lambda access, cluster: intent(
        {"externalLabels": {"cluster": "workstation"}}))
    recorded: dict = {}
    with pytest.raises(PreconditionUnmet) as e:
        remote_intent.require_remote_intent(None, remote, SimpleNamespace(name="oke"), "hop", recorded.__setitem__)
    assert (e.value.hop, e.value.diagnosis) == (
        "hop", f"Prometheus observability/{CR} has no spec.remoteWrite: its series are sent nowhere")
    assert recorded["cluster_label"].startswith("cluster=workstation (")


def test_a_missing_pool_names_what_the_users_prometheus_selects(tmp_path) -> None:
    """Release kps in observability: the words name its selectors as read from the resource, not this project's label."""
    from conformance.probes.metrics.monitor_selection import not_selected_words
    with FakeKubeAPI("oke") as api:
        api.add_prometheus("observability", CR, spec={**KPS, "serviceMonitorNamespaceSelector": None})
        api.add_service("observability", "prometheus-operated", port=9090, port_name="web")
        access, cluster = access_for(tmp_path, api)
        envoy = not_selected_words(access, cluster, MANIFESTS / "envoy-podmonitor.yaml")
        istiod = not_selected_words(access, cluster, MANIFESTS / "istiod-servicemonitor.yaml")
    assert envoy.startswith(f"the PodMonitor monitoring/envoy-stats is not selected by the Prometheus (Prometheus "
                            f"observability/{CR} selects PodMonitors with release=kps (podMonitorSelector) in namespaces "
                            "with everything ({}) (podMonitorNamespaceSelector); see docs/troubleshooting.md")
    assert "kube-prometheus-stack" not in envoy.replace(CR, "")
    assert (f"selects ServiceMonitors with release=kps (serviceMonitorSelector) in its own namespace observability only "
            "(serviceMonitorNamespaceSelector)") in istiod


def test_a_users_stack_expects_the_monitors_its_prometheus_selects(tmp_path) -> None:
    """kps in observability, found by its resource: its selected ServiceMonitors and PodMonitors are the jobs expected
    (not this project's values), each naming the monitor and the resource that selects it."""
    from types import SimpleNamespace

    from conformance.probes.platform.stack_jobs import expected_jobs
    from tests.test_discovery import kps_prometheus
    with FakeKubeAPI("oke") as api:
        kps_prometheus(api)
        api.add_prometheus("observability", CR, spec=KPS)
        api.add_service_monitor("observability", "kps-kubelet", labels={"release": "kps"})
        api.add_service_monitor("default", "my-app", labels={"release": "kps"})
        api.add_service_monitor("default", "not-mine", labels={"release": "other"})
        api.add_pod_monitor("monitoring", "envoy-stats", labels={"release": "kps"})
        access, cluster = access_for(tmp_path, api)
        expectation = expected_jobs(access, cluster, SimpleNamespace(name="oke Prometheus"))
    assert not expectation.project
    assert expectation.source == (f"the monitors Prometheus observability/{CR} selects (oke Prometheus found at "
                                  f"observability/prometheus-operated:9090 (Prometheus observability/{CR}), not under "
                                  "the bring-up's name)")
    assert [(j.monitor, j.source) for j in expectation.jobs] == [
        ("podMonitor/monitoring/envoy-stats", f"PodMonitor monitoring/envoy-stats, selected by Prometheus observability/{CR}"),
        ("serviceMonitor/default/my-app", f"ServiceMonitor default/my-app, selected by Prometheus observability/{CR}"),
        ("serviceMonitor/observability/kps-kubelet",
         f"ServiceMonitor observability/kps-kubelet, selected by Prometheus observability/{CR}")]
    assert expectation.jobs[0].owns({"scrapePool": "podMonitor/monitoring/envoy-stats/0"})


def test_the_project_stack_keeps_its_values_as_the_expectation(tmp_path) -> None:
    from types import SimpleNamespace

    from conformance.probes.platform.scrape_jobs import required_jobs
    from conformance.probes.platform.stack_jobs import expected_jobs
    with FakeKubeAPI("oke") as api:
        api.add_stack_services(prometheus="http://127.0.0.1:9")
        access, cluster = access_for(tmp_path, api)
        expectation = expected_jobs(access, cluster, SimpleNamespace(name="oke Prometheus"))
    assert expectation.project and expectation.jobs == required_jobs("primary")
    assert expectation.source == ("this project's values for a primary (oke Prometheus is the bring-up's Service "
                                  "monitoring/kube-prometheus-stack-prometheus:9090)")
