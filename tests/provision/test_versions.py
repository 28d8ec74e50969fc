"""The pins: node image inside the pinned Istio's Kubernetes range, checksums present or marked unverified."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from conformance.core.errors import ConfigError
from conformance.core.versions import check_node_image, load_versions, minor

VERSIONS = load_versions()


def test_the_pinned_node_image_is_inside_the_pinned_istio_range():
    check_node_image(VERSIONS)


@pytest.mark.parametrize("istio,image,ok", [
    # Istio 1.29 supports Kubernetes 1.31-1.35 (docs/real-stack.md#pins).
    ("1.29.6", "kindest/node:v1.35.0@sha256:452d", True),
    ("1.29.6", "kindest/node:v1.31.0", True),
    ("1.29.6", "kindest/node:v1.36.1", False),   # kind v0.32.0's default: one minor too new
    ("1.29.6", "kindest/node:v1.30.13", False),  # one minor too old
    # pytest-kind's default kind v0.17.0 brings Kubernetes 1.25: below every Istio >= 1.20.
    ("1.29.6", "kindest/node:v1.25.3", False),
    ("1.24.0", "kindest/node:v1.31.0", True),
    ("1.24.0", "kindest/node:v1.32.0", False),
])
def test_node_image_range(istio, image, ok):
    versions = replace(VERSIONS, istio=istio, node_kubernetes="%d.%d" % minor(image))
    if ok:
        check_node_image(versions, image)
    else:
        with pytest.raises(ConfigError, match="outside Istio .* supported range"):
            check_node_image(versions, image)


def test_an_istio_without_a_known_range_is_refused():
    with pytest.raises(ConfigError, match="no entry for Istio 1.31"):
        check_node_image(replace(VERSIONS, istio="1.31.0"))


def test_node_image_is_pinned_by_digest():
    assert re.fullmatch(r"kindest/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}", VERSIONS.node_image)


@pytest.mark.parametrize("name", sorted(VERSIONS.tools))
def test_every_tool_has_a_checksum_slot_per_platform(name):
    tool = VERSIONS.tools[name]
    assert set(tool.sha256) == {"linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"}
    for digest in tool.sha256.values():
        # null = unverified (no internet when pinned): the cache refuses to download it.
        assert digest is None or re.fullmatch(r"[0-9a-f]{64}", digest)


def test_every_unpinned_checksum_says_how_it_is_verified():
    text = VERSIONS.path.read_text()
    assert text.count("null  # not pinned: verified against sha256_url") == sum(
        1 for t in VERSIONS.tools.values() for d in t.sha256.values() if d is None)
    assert all(t.sha256_url for t in VERSIONS.tools.values()), "an unpinned digest needs a published one"


def test_images_are_derived_from_the_pins():
    assert f"docker.io/istio/proxyv2:{VERSIONS.istio}" in VERSIONS.images
    assert f"docker.io/grafana/loki:{VERSIONS.loki_image_tag}" in VERSIONS.images
    assert f"quay.io/kiali/kiali:v{VERSIONS.charts['kiali-operator'].version}" in VERSIONS.images
    assert not [i for i in VERSIONS.images if "{" in i or ":latest" in i]
