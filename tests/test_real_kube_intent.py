"""The stack's own intent through REAL kube-apiservers (issue 18 item 2, issue 17 item 2): the Prometheus resources
kube-prometheus-stack renders for release `kps` decide, at the first attempt, whether a monitor is selected, which label
tells a remote's series apart and where its remote write goes; each diagnosis names the setting and where it was read."""

from __future__ import annotations

import copy
from pathlib import Path

from tests.proving_realkube import (MANIFESTS, OTHER_RELEASE, PROMETHEUS_CR, RealKubeGround, apply, load,
                                    prometheus_resource, relabelled)
from tests.test_real_kube_suites import ground_for, run

ENVOY = "suites.test_mesh::test_envoy_sidecars_are_scraped[{}]"
ISTIOD = "suites.test_mesh::test_istiod_is_scraped_with_its_metrics"
REACH = "suites.test_metrics::test_remote_series_reach_the_primary[workstation]"
PLATFORM = "suites.test_platform::test_every_prometheus_target_is_up[{}]"
SELECTION = ("-m", "mesh or metrics or platform",
             "-k", "sidecars_are_scraped or istiod or reach_the_primary or every_prometheus_target_is_up")
CR = f"Prometheus observability/{PROMETHEUS_CR}"


def broken_resource(ground: RealKubeGround, cluster: str, **spec) -> dict:
    doc = copy.deepcopy(prometheus_resource(ground, cluster))
    doc["spec"].update(spec)
    return doc


def seen(result) -> dict[str, tuple[str, str, dict[str, str]]]:
    """Each case's outcome, failure text and properties, read at once: the next run in the folder replaces its JUnit."""
    print(result.output.split("conformance verdict", 1)[-1].split("reports: ", 1)[0])  # the verdict and check times
    return {case: (result.properties(case)["outcome"], result.failure(case) if result.properties(case)["outcome"]
                   not in ("passed", "skipped") else "", result.properties(case)) for case in (*result.cases(),)}


def test_the_prometheus_resources_intent_judges_monitors_labels_and_remote_write(tmp_path: Path) -> None:
    with ground_for(tmp_path, names="other") as ground:
        healthy = seen(run(ground, *SELECTION))
        podmonitor = relabelled(load(MANIFESTS / "envoy-podmonitor.yaml")[0], "other")
        with ground.ns:
            apply(ground.api("workstation"), [{**podmonitor, "metadata": {**podmonitor["metadata"],
                                                                          "labels": {"release": "other"}}}])
            apply(ground.api("oke"), [broken_resource(ground, "oke", serviceMonitorNamespaceSelector={
                "matchLabels": {"monitoring": "enabled"}})])
            apply(ground.api("workstation"), [broken_resource(ground, "workstation",
                                                              externalLabels={"cluster": "workstatoin"})])
        broken = seen(run(ground, *SELECTION))
        with ground.ns:
            apply(ground.api("workstation"), [broken_resource(ground, "workstation", remoteWrite=[
                {"url": "http://10.99.0.7:9090/api/v1/write"}])])
        elsewhere = seen(run(ground, "-m", "metrics", "-k", "reach_the_primary"))
    # istiod's pool scrapes the ground's FakeIstiod (pilot_xds_pushes, istio_build): selected, scraped, its metrics there.
    for case in (ENVOY.format("oke"), ENVOY.format("workstation"), ISTIOD, REACH, PLATFORM.format("oke"),
                 PLATFORM.format("workstation")):
        assert healthy[case][0] == "passed", healthy[case]
    assert healthy[ENVOY.format("workstation")][2]["monitor_selection"] == (
        f"PodMonitor monitoring/envoy-stats is selected by {CR} (podMonitorSelector: release={OTHER_RELEASE})")
    assert healthy[ISTIOD][2]["monitor_selection"] == (
        f"ServiceMonitor monitoring/istiod is selected by {CR} (serviceMonitorSelector: release={OTHER_RELEASE})")
    reach = healthy[REACH][2]
    assert reach["cluster_label"] == f"cluster=workstation ({CR} spec.externalLabels.cluster)"
    assert reach["remote_write_target"] == ("http://10.77.1.1:9090/api/v1/write: Service observability/"
                                            "prometheus-operated (external IP)")

    assert broken[ENVOY.format("workstation")][0] == "precondition", broken
    assert (f"workstation Envoy → workstation Prometheus: PodMonitor monitoring/envoy-stats is not selected by {CR}: "
            "it wants release=kps (podMonitorSelector), the monitor has release=other") in broken[ENVOY.format("workstation")][1]
    assert broken[ENVOY.format("oke")][0] == "passed"
    assert broken[ISTIOD][0] == "precondition"
    assert (f"ServiceMonitor monitoring/istiod is not selected by {CR}: its serviceMonitorNamespaceSelector wants "
            "namespaces with monitoring=enabled, namespace monitoring has no monitoring label") in broken[ISTIOD][1]
    for cluster, monitor in (("oke", "ServiceMonitor monitoring/istiod"), ("workstation", "PodMonitor monitoring/envoy-stats")):
        assert broken[PLATFORM.format(cluster)][0] == "precondition"
        assert f"{cluster} Prometheus → its scrape targets: {monitor} is not selected by {CR}" in broken[
            PLATFORM.format(cluster)][1]
    assert broken[REACH][0] == "precondition"
    assert (f"{CR} labels its series cluster=workstatoin ({CR} spec.externalLabels.cluster); the topology names the "
            "cluster workstation") in broken[REACH][1]

    # The resource names an address of none of the primary's, but a gateway may carry it there: recorded, not judged,
    # and what the primary holds decides (this ground's process still writes to the primary: the series arrive).
    assert elsewhere[REACH][0] == "passed", elsewhere
    assert elsewhere[REACH][2]["remote_write_target"] == (
        "http://10.99.0.7:9090/api/v1/write: 10.99.0.7 is an address of none of them: a gateway or an ingress of its "
        "own may carry it")
