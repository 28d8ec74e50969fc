"""The images --preload loads are the ones the charts run: derived from the pins, checked against the pods."""

from __future__ import annotations

import re
import string

import pytest
import yaml

from conformance.provision.phases.images import normalize_image, preload_images
from conformance.core.versions import VERSIONS_FILE, load_versions
from conformance.core.stack import STACK_DIR

RAW = yaml.safe_load(VERSIONS_FILE.read_text())
PRELOAD = preload_images(load_versions())


def test_every_preloaded_tag_comes_from_a_pin():
    # A literal tag is a second copy of a version: the next bump would leave it behind.
    for template in RAW["images"]:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
        assert fields, f"{template}: its tag is a literal, not a pin"
        assert not re.search(r":v?\d+\.\d+", template.split("{")[0]), template


def test_every_app_pin_is_used_by_an_image_or_a_real_server_build():
    templates = RAW["images"] + [t for imgs in (RAW.get("profile_images") or {}).values() for t in imgs]
    used = {f for t in templates for _, f, _, _ in string.Formatter().parse(t) if f}
    # apps.prometheus also pins the real Prometheus the self-tests build (tests/real/); apps.opensearch the real
    # OpenSearch node (tests/real/opensearch/), which the vector-opensearch profile also preloads.
    assert set(RAW["apps"]) - used <= {"prometheus"}, "an apps: key nothing derives from"


@pytest.mark.parametrize("image,why", [
    ("quay.io/prometheus/node-exporter:v1.12.1-distroless",
     "kube-prometheus-stack 88.5.3 sets prometheus-node-exporter.image.distroless: true"),
    ("quay.io/prometheus/prometheus:v3.14.0-distroless", "values.yaml prometheusSpec.image.tag"),
    ("quay.io/kiali/kiali-operator:v2.29.0", "the operator chart's version is its image tag"),
])
def test_the_images_the_charts_render_are_preloaded(image, why):
    assert image in PRELOAD, why


@pytest.mark.parametrize("image,why", [
    ("quay.io/prometheus/node-exporter:v1.12.1", "the chart runs the -distroless variant"),
    ("quay.io/prometheus-operator/admission-webhook:v0.93.1",
     "prometheusOperator.admissionWebhooks.deployment.enabled is false by default"),
])
def test_images_nobody_runs_are_not_preloaded(image, why):
    assert image not in PRELOAD, why


def test_every_image_in_the_project_s_own_manifests_is_preloaded():
    loaded = {normalize_image(i) for i in PRELOAD}
    for path in sorted((STACK_DIR / "app").glob("*.yaml")) + sorted((STACK_DIR / "manifests").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = ((doc or {}).get("spec") or {}).get("template", {}).get("spec") or {}
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                assert normalize_image(c["image"]) in loaded, f"{path.name}: {c['image']}"


@pytest.mark.parametrize("ref,stored", [
    ("grafana/loki:2.9.3", "docker.io/grafana/loki:2.9.3"),  # loki-stack's loki chart has no registry
    ("busybox", "docker.io/library/busybox:latest"),
    ("quay.io/kiali/kiali:v2.29.0", "quay.io/kiali/kiali:v2.29.0"),
    ("localhost:5000/app:1", "localhost:5000/app:1"),
])
def test_image_references_compare_as_containerd_stores_them(ref, stored):
    assert normalize_image(ref) == stored


# -- after `up --preload`: the pods' images against the list ------------------------------------------


def pods_run(fakebin, cluster: str, *images: str) -> None:
    fakebin.scenario({"tool": "kubectl", "match": ["--context", f"kind-{cluster}", "get", "pods", "--all-namespaces"],
                      "stdout": "".join(f"{i}\n" for i in images)})


def test_preload_ends_by_checking_the_images_the_pods_run(provision, fakebin):
    pods_run(fakebin, "oke", "grafana/loki:2.9.3", "docker.io/istio/proxyv2:1.29.6",
             "quay.io/prometheus/node-exporter:v1.12.1-distroless")
    code, out = provision("up", "--preload")
    assert code == 0, out
    checks = [c for c in fakebin.commands() if "get pods --all-namespaces" in c and "jsonpath" in c]
    assert len(checks) == 2, "one per cluster"


def test_an_image_the_charts_run_but_preload_missed_fails_naming_it(provision, fakebin):
    pods_run(fakebin, "workstation", "docker.io/istio/proxyv2:1.29.6", "quay.io/prometheus/node-exporter:v1.12.1")
    code, out = provision("up", "--preload")
    assert code == 1
    assert ("bring-up failed at preload workstation: every image the pods run was preloaded: pods on workstation "
            "run images --preload did not load: quay.io/prometheus/node-exporter:v1.12.1") in out


def test_without_preload_nothing_is_compared(happy_up):
    assert not any("get pods --all-namespaces" in c and "jsonpath" in c for c in happy_up.fakebin.commands())
