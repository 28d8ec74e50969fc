"""The control plane's Go modules pin what stack/versions.yaml and tests/real/pins.yaml say."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.real.registry import REGISTRY, kubernetes_staging_version, node_kubernetes_version, version_of

KUBE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def replaces(go_mod: str) -> dict[str, str]:
    """old module -> new version, for `old => old vX` replacements (block or single line)."""
    return {old: ver for old, new, ver in re.findall(r"^\s*(?:replace\s+)?(\S+)\s+=>\s+(\S+)\s+(v\S+)\s*$", go_mod, re.M)
            if old == new}


def upstream_staging() -> list[str] | None:
    """The staging modules k8s.io/kubernetes' own go.mod replaces with ./staging paths, when the module cache has it."""
    modcache = os.environ.get("GOMODCACHE") or str(Path.home() / "go" / "pkg" / "mod")
    mod = Path(modcache) / "cache/download/k8s.io/kubernetes/@v" / f"{node_kubernetes_version()}.mod"
    if not mod.is_file():
        return None
    return sorted(re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", mod.read_text(), re.M))


def test_the_control_plane_is_the_node_images_kubernetes():
    assert node_kubernetes_version() == "v1.35.0"  # kindest/node:v1.35.0 in stack/versions.yaml
    assert kubernetes_staging_version("v1.35.0") == "v0.35.0"
    assert {REGISTRY[n].version for n in KUBE} == {"v1.35.0"}
    assert version_of("etcd") == "v3.6.6"  # k8s.io/kubernetes v1.35.0 build/dependencies.yaml `etcd`


@pytest.mark.parametrize("name", KUBE)
def test_every_staging_module_is_replaced_by_its_release(name):
    """k8s.io/kubernetes cannot be required without these: its go.mod points them at ./staging."""
    ours = replaces((REGISTRY[name].folder / "go.mod").read_text())
    want = kubernetes_staging_version(node_kubernetes_version())
    assert ours and set(ours.values()) == {want}
    staging = upstream_staging()
    if staging is not None:
        assert sorted(ours) == staging
