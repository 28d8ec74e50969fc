"""kind/*.yaml bind the four control-plane metrics endpoints kube-prometheus-stack scrapes on 0.0.0.0.

kind cannot run here, so the test renders what kind v0.31.0 renders: the kubeadm
documents it writes for Kubernetes 1.35 (pkg/cluster/internal/kubeadm/config.go,
ConfigTemplateBetaV3, the fields that matter here), patched the way kind patches
them (pkg/internal/patch: RFC 7386 merge patch on documents whose kind matches and,
when the patch names one, whose apiVersion matches; a patch that matches nothing is
silently dropped, which is why the apiVersion is asserted).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

KIND_DIR = Path(__file__).resolve().parents[2] / "kind"
CONFIGS = sorted(p for p in KIND_DIR.glob("*.yaml") if p.name != "topology.yaml")

# What kind v0.31.0 writes for v1.35 before patches (no IPv6, kube-proxy mode iptables).
KUBEADM_DOCS = [
    {"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration",
     "controllerManager": {"extraArgs": {"enable-hostpath-provisioner": "true"}},
     "scheduler": {"extraArgs": None},
     "networking": {"podSubnet": "", "serviceSubnet": ""}},
    {"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "InitConfiguration"},
    {"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "JoinConfiguration"},
    {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"},
    {"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration", "mode": "iptables"},
]

# kubeadm's and kube-proxy's defaults when the rendered config leaves a field unset.
DEFAULT_BIND = "127.0.0.1"


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386, as evanphx/json-patch MergePatch applies it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def render(config: dict) -> list[dict]:
    docs = copy.deepcopy(KUBEADM_DOCS)
    for raw in config.get("kubeadmConfigPatches") or []:
        patch = yaml.safe_load(raw)
        for i, doc in enumerate(docs):
            if doc["kind"] == patch.get("kind") and patch.get("apiVersion", doc["apiVersion"]) == doc["apiVersion"]:
                docs[i] = merge_patch(doc, patch)
    return docs


def _host(address: str) -> str:
    """ "http://0.0.0.0:2381" or "0.0.0.0:10249" -> "0.0.0.0"."""
    return address.split("//", 1)[-1].rsplit(":", 1)[0]


def metrics_binds(docs: list[dict]) -> dict[str, str]:
    """Where each endpoint kube-prometheus-stack 88.5.3 scrapes listens, per the rendered config."""
    cluster = next(d for d in docs if d["kind"] == "ClusterConfiguration")
    proxy = next(d for d in docs if d["kind"] == "KubeProxyConfiguration")

    def arg(component: dict | None, name: str) -> str | None:
        return ((component or {}).get("extraArgs") or {}).get(name)

    return {
        "kube-controller-manager:10257": arg(cluster.get("controllerManager"), "bind-address") or DEFAULT_BIND,
        "kube-scheduler:10259": arg(cluster.get("scheduler"), "bind-address") or DEFAULT_BIND,
        "etcd:2381": _host(arg((cluster.get("etcd") or {}).get("local"), "listen-metrics-urls")
                           or f"http://{DEFAULT_BIND}:2381"),
        "kube-proxy:10249": _host(proxy.get("metricsBindAddress") or f"{DEFAULT_BIND}:10249"),
    }


def test_there_is_a_kind_config_per_cluster():
    assert [p.name for p in CONFIGS] == ["oke.yaml", "workstation.yaml"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_scraped_control_plane_endpoint_listens_on_all_addresses(path):
    binds = metrics_binds(render(yaml.safe_load(path.read_text())))
    assert binds == {k: "0.0.0.0" for k in binds}, f"{path.name}: {binds}"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_patches_name_the_api_versions_kind_writes_for_1_35(path):
    # A patch whose apiVersion matches no document is dropped without a word.
    written = {(d["kind"], d["apiVersion"]) for d in KUBEADM_DOCS}
    for raw in yaml.safe_load(path.read_text())["kubeadmConfigPatches"]:
        patch = yaml.safe_load(raw)
        assert (patch["kind"], patch["apiVersion"]) in written, patch


def test_without_the_patches_all_four_stay_on_loopback():
    # Today's files before this change: the four targets are down when Prometheus scrapes the node IP.
    for path in CONFIGS:
        config = yaml.safe_load(path.read_text())
        config.pop("kubeadmConfigPatches")
        assert set(metrics_binds(render(config)).values()) == {DEFAULT_BIND}


def test_a_patch_for_another_kubeadm_api_version_is_caught():
    config = yaml.safe_load((KIND_DIR / "oke.yaml").read_text())
    config["kubeadmConfigPatches"] = [p.replace("v1beta3", "v1beta4") for p in config["kubeadmConfigPatches"]]
    binds = metrics_binds(render(config))
    assert binds["kube-controller-manager:10257"] == DEFAULT_BIND
    assert binds["kube-proxy:10249"] == "0.0.0.0"


# -- the real kind ------------------------------------------------------------------------------

FAKE_DOCKER = '''#!{python}
"""Just enough docker for `kind create cluster` to write /kind/kubeadm.conf, which it keeps; then stop."""
import json, os, sys
a, d = sys.argv[1:], os.path.dirname(os.path.abspath(__file__))
j = " ".join(a)
def out(s=""):
    if s: print(s)
    sys.exit(0)
if a[:1] == ["exec"]:
    if "/kind/kubeadm.conf" in j:
        open(os.path.join(d, "kubeadm.conf"), "w").write(sys.stdin.read())
        sys.exit("stop: kubeadm.conf captured")
    out("v1.35.0" if "/kind/version" in j else "")
if a[:1] == ["logs"]: out("Reached target Multi-User System.")
if a[:1] == ["info"]: out(json.dumps({{"CgroupVersion": "2", "SecurityOptions": []}}))
if a[:1] == ["run"]: open(os.path.join(d, "running"), "w").close(); out("id")
if a[:1] == ["ps"]: out("{name}-control-plane" if os.path.exists(os.path.join(d, "running")) else "")
if a[:1] == ["inspect"]:
    if "kind.role" in j: out("control-plane")
    if "Networks" in j: out("172.18.0.2,fc00:f853:ccd:e793::2")
out()
'''


@pytest.fixture(scope="session")
def real_kind() -> Path:
    """kind at the pinned version, from the real-servers layer (built once with Go, cached by version)."""
    from tests.real import require
    return require("kind")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_the_real_kind_renders_every_endpoint_on_all_addresses(real_kind, path, tmp_path):
    import subprocess
    import sys

    name = path.stem
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable, name=name))
    docker.chmod(0o755)
    done = subprocess.run([str(real_kind), "create", "cluster", "--name", name, "--config", str(path),
                           "--image", "kindest/node:v1.35.0", "--kubeconfig", str(tmp_path / "kubeconfig"),
                           "--retain"], env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    conf = bin_dir / "kubeadm.conf"
    assert conf.is_file(), f"kind never wrote its kubeadm config: {done.stderr[-500:]}"
    docs = [d for d in yaml.safe_load_all(conf.read_text()) if d]
    assert {d["apiVersion"] for d in docs if d["kind"] == "ClusterConfiguration"} == {"kubeadm.k8s.io/v1beta3"}
    binds = metrics_binds(docs)
    assert binds == {k: "0.0.0.0" for k in binds}, f"{path.name} as kind {real_kind} renders it: {binds}"
