"""Every manifest the bring-up applies, validated: core kinds with kubernetes-validate, CRDs with our schemas."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from conformance.provision import dashboards
from conformance.provision.phases import mesh, stack
from conformance.provision.steps import Facts
from conformance.core.versions import load_versions
from conformance.core.stack import STACK_DIR

# Test-only dependencies (pyproject's `test` extra); skipped with the reason until installed.
jsonschema = pytest.importorskip("jsonschema", reason="pip install jsonschema (test extra)")
kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (test extra)")

SCHEMAS = Path(__file__).with_name("schemas")
FILES = sorted((STACK_DIR / "manifests").glob("*.yaml")) + sorted((STACK_DIR / "app").glob("*.yaml"))
# The node image's Kubernetes: what the API server will check against.
KUBERNETES = load_versions().node_kubernetes + ".0"


def validate(doc: dict) -> None:
    """Raise if the document is not valid for its kind."""
    group_version = doc["apiVersion"]
    custom = SCHEMAS / f"{group_version.replace('/', '-')}-{doc['kind']}.json"
    if custom.is_file():
        jsonschema.validate(doc, json.loads(custom.read_text()))
    elif "." in group_version.split("/")[0] and not group_version.startswith(("rbac.authorization.k8s.io", "apps")):
        raise AssertionError(f"no schema for custom resource {group_version} {doc['kind']}; add one to {SCHEMAS}")
    else:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_every_manifest_is_valid(path):
    docs = documents(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        validate(doc)


def test_the_schemas_refuse_what_the_cluster_would_refuse():
    kiali = documents(STACK_DIR / "manifests" / "kiali.yaml")[0]
    kiali["spec"]["deployment"]["accessible_namespaces"] = ["**"]  # Kiali 1.x; removed in 2.0
    with pytest.raises(jsonschema.ValidationError):
        validate(kiali)
    monitor = documents(STACK_DIR / "manifests" / "istiod-servicemonitor.yaml")[0]
    monitor["spec"]["endpoints"][0]["port"] = 15014  # must be the Service port's name
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)
    namespace = documents(STACK_DIR / "manifests" / "namespaces.yaml")[0]
    namespace["metadata"]["lables"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(namespace)


def test_rendered_and_generated_manifests_are_valid(tmp_path):
    facts = Facts()
    mesh._render_pool(tmp_path / "pool.yaml", "172.18.255.230-172.18.255.249")
    stack._render_kiali(tmp_path / "kiali.yaml", "oke")
    stack.write_grafana_secret(tmp_path / "grafana.yaml", "monitoring", facts)
    facts.set("workstation.control_plane_ip", "172.18.0.3")
    facts.set("workstation.kiali_token_json", json.dumps({"data": {
        "token": base64.b64encode(b"t" * 40).decode(), "ca.crt": base64.b64encode(b"ca").decode()}}))
    stack.write_kiali_remote_secret(tmp_path / "kiali-remote.yaml", "workstation", "monitoring", facts)
    decl = dashboards.declared()
    folder = tmp_path / "dash"
    folder.mkdir()
    for d in decl:
        (folder / f"{d.key}.json").write_text(json.dumps({"title": d.key, "panels": [{"type": "text"}]}))
    (tmp_path / "cms.yaml").write_text(dashboards.offline_configmaps(folder, decl, "monitoring"))
    for name in ("pool.yaml", "kiali.yaml", "grafana.yaml", "kiali-remote.yaml", "cms.yaml"):
        for doc in documents(tmp_path / name):
            validate(doc)
    assert documents(tmp_path / "pool.yaml")[0]["spec"]["addresses"] == ["172.18.255.230-172.18.255.249"]


def test_monitoring_is_never_injected_and_the_app_namespace_is():
    [monitoring] = documents(STACK_DIR / "manifests" / "namespaces.yaml")
    assert monitoring["metadata"]["name"] == "monitoring"
    assert monitoring["metadata"]["labels"] == {"istio-injection": "disabled"}
    [app] = documents(STACK_DIR / "app" / "namespace.yaml")
    assert app["metadata"]["labels"] == {"istio-injection": "enabled"}
    # Nothing else the bring-up applies turns injection on.
    for path in FILES:
        for doc in documents(path):
            labels = doc.get("metadata", {}).get("labels") or {}
            if labels.get("istio-injection") == "enabled" or "istio.io/rev" in labels:
                assert doc["metadata"]["name"] == "sample", path


def test_monitors_carry_the_label_the_operator_selects_on():
    release = load_versions().charts["kube-prometheus-stack"].release
    for name in ("istiod-servicemonitor.yaml", "envoy-podmonitor.yaml"):
        [doc] = documents(STACK_DIR / "manifests" / name)
        # serviceMonitorSelectorNilUsesHelmValues: true renders matchLabels {release: <release>}.
        assert doc["metadata"]["labels"]["release"] == release, name
    [istiod] = documents(STACK_DIR / "manifests" / "istiod-servicemonitor.yaml")
    assert istiod["spec"]["endpoints"][0]["port"] == "http-monitoring"  # istiod's Service port 15014
    [envoy] = documents(STACK_DIR / "manifests" / "envoy-podmonitor.yaml")
    assert envoy["spec"]["podMetricsEndpoints"][0]["port"] == "http-envoy-prom"  # 15090, Envoy-only stats


def test_kiali_cr_uses_2x_fields():
    [cr] = documents(STACK_DIR / "manifests" / "kiali.yaml")
    assert "accessible_namespaces" not in json.dumps(cr)
    assert cr["spec"]["deployment"]["cluster_wide_access"] is True
    assert cr["spec"]["clustering"]["autodetect_secrets"]["label"] == "kiali.io/multiCluster=true"
    assert cr["spec"]["external_services"]["prometheus"]["url"] == "http://kube-prometheus-stack-prometheus.monitoring:9090"
    assert cr["spec"]["server"]["web_root"] == "/kiali"


def test_the_sample_app_images_come_from_one_registry_and_are_preloadable():
    images = {c["image"] for name in ("server.yaml", "traffic.yaml")
              for doc in documents(STACK_DIR / "app" / name)
              for c in doc["spec"]["template"]["spec"]["containers"]}
    assert {i.split("/")[0] for i in images} == {"docker.io"}
    assert images <= set(load_versions().images)
    [traffic] = documents(STACK_DIR / "app" / "traffic.yaml")
    assert traffic["spec"]["replicas"] == 0, "started and stopped by the mesh checks"
