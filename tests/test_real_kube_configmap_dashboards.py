"""configmap-dashboards through a REAL kube-apiserver: the suite's ConfigMap and namespace are real objects, the
fake k8s-sidecar WATCHes them as the chart's METHOD WATCH does, and the real namespace controller cleans up."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes import client as kclient

from conformance.probes.configmap_dashboards.sidecar import NAMESPACE, SIDECAR_CONTAINER
from conformance.core.stack import stack_services
from tests.proving_configmap_dashboards import part_sidecar_config, watching_sidecar
from tests.proving_kube import GRAFANA_POD
from tests.proving_realkube import RealKubeGround, cri_line, wait_for
from tests.real.kube import LogRule
from tests.suite_runner import run_suites
from tests.test_real_kube_suites import ground_for

APPEARS = "suites.test_configmap_dashboards::test_configmap_dashboard_appears_in_its_folder"
PANELS = "suites.test_configmap_dashboards::test_configmap_dashboard_panel_queries_run"
GONE = "suites.test_configmap_dashboards::test_configmap_dashboard_disappears_when_the_configmap_is_deleted"


def replace_grafana_pod(core: kclient.CoreV1Api, env: list[dict]) -> None:
    """A pod's containers are immutable: the Grafana pod is made again, its sidecar with the chart's env."""
    ns = stack_services()["grafana"].namespace
    pod = core.api_client.sanitize_for_serialization(core.read_namespaced_pod(GRAFANA_POD, ns))
    core.delete_namespaced_pod(GRAFANA_POD, ns, grace_period_seconds=0)

    def gone() -> bool:
        try:
            core.read_namespaced_pod(GRAFANA_POD, ns)
        except kclient.ApiException as e:
            return e.status == 404
        return False

    wait_for("the old Grafana pod gone", gone)
    spec = pod["spec"]
    # What the pod was made with (the admission-added token volume mount goes: the new pod gets its own).
    containers = [{k: c[k] for k in ("name", "image", "ports") if k in c} for c in spec["containers"]]
    for c in containers:
        if c["name"] == SIDECAR_CONTAINER:
            c["env"] = env
    fresh = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": GRAFANA_POD, "namespace": ns, "labels": pod["metadata"]["labels"]},
             "spec": {"hostNetwork": spec.get("hostNetwork", False), "containers": containers,
                      "terminationGracePeriodSeconds": spec.get("terminationGracePeriodSeconds", 0)}}
    core.create_namespaced_pod(ns, fresh)
    wait_for("the new Grafana pod ready", lambda: any(
        c.type == "Ready" and c.status == "True" for c in core.read_namespaced_pod(GRAFANA_POD, ns).status.conditions or []))
    service = stack_services()["grafana"].service
    wait_for("Grafana's endpoints ready", lambda: any(
        s.addresses for s in core.read_namespaced_endpoints(service, ns).subsets or []))


def topology_with_part(ground: RealKubeGround) -> Path:
    path = ground.topology()
    doc = yaml.safe_load(path.read_text())
    doc["parts"] = ["configmap-dashboards"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_configmap_dashboard_through_the_real_api_server_and_a_watching_sidecar(tmp_path: Path) -> None:
    sidecar_log = tmp_path / "sc-dashboard.log"
    sidecar_log.touch()
    rule = LogRule("monitoring", sidecar_log, pod=GRAFANA_POD, container=SIDECAR_CONTAINER)
    config = part_sidecar_config()
    with ground_for(tmp_path, log_rules={"oke": [rule]}) as g:
        with g.ns:
            core = kclient.CoreV1Api(g.api("oke"))
            replace_grafana_pod(core, config.env())

            def log(line: str) -> None:
                with sidecar_log.open("a") as f:
                    f.write(cri_line(line))

            sidecar = watching_sidecar(core, g.kubeconfig, "kind-oke", g.grafana, tmp_path / "sc-dashboards", config, log)
        try:
            with g.ns:
                result = run_suites(g.folder, "--topology", str(topology_with_part(g)), "-m", "configmap_dashboards",
                                    timeout=240)
                namespace_gone = wait_for(f"namespace {NAMESPACE} deleted by the namespace controller", lambda: _gone(core))
        finally:
            sidecar.stop()
    assert result.code == 0, result.output
    for case in (APPEARS, PANELS, GONE):
        assert result.properties(case)["outcome"] == "passed", result.failure(case)
    assert result.properties(APPEARS)["configmap_dashboard_folder"] == "Conformance"
    assert namespace_gone
    assert not sidecar.errors
    print({k: result.properties(APPEARS)[k] for k in ("configmap_dashboard_wait_seconds",)},
          result.properties(GONE)["configmap_dashboard_removal_seconds"])


def _gone(core: kclient.CoreV1Api) -> bool:
    try:
        core.read_namespace(NAMESPACE)
    except kclient.ApiException as e:
        return e.status == 404
    return False
