"""Per-cluster state for kind clusters: configs, the ownership marker, kubeconfigs, MetalLB slices."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conformance.core.errors import ConfigError
from conformance.core.topology import Cluster

KIND_DIR = Path(__file__).resolve().parents[2] / "kind"
MARKER = "created-by-monitoring-conformance.json"
# Addresses per cluster for MetalLB: the east-west gateway, Loki and Prometheus
# need three; Istio's kind_provisioner.sh gives each cluster 20.
POOL_SIZE = 20
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


@dataclass(frozen=True)
class KindConfig:
    """The parts of a kind config (kind/<cluster>.yaml) the bring-up relies on."""

    path: Path
    pod_subnet: str
    service_subnet: str
    host_ports: tuple[tuple[str, int], ...]  # (listen address, port) the host must have free
    sha256: str


def config_path(cluster: Cluster) -> Path:
    """kind/<name>.yaml next to the default topology."""
    return KIND_DIR / f"{cluster.name}.yaml"


def load_kind_config(path: Path) -> KindConfig:
    """Read a kind config; refuse what the bring-up cannot handle, naming the key."""
    if not path.is_file():
        raise ConfigError(f"kind config {path}: file not found (one config per kind cluster, named after it)")
    raw = path.read_bytes()
    doc = yaml.safe_load(raw) or {}
    net = doc.get("networking") or {}
    for key in ("podSubnet", "serviceSubnet"):
        if not net.get(key):
            raise ConfigError(f"kind config {path}: networking.{key}: required, and distinct per cluster")
    nodes = doc.get("nodes") or [{"role": "control-plane"}]
    if len(nodes) != 1:
        # Routes between clusters are added on the control-plane node only.
        raise ConfigError(f"kind config {path}: nodes: exactly one control-plane node is supported, got {len(nodes)}")
    if nodes[0].get("image"):
        raise ConfigError(f"kind config {path}: nodes[0].image: remove it; the node image is pinned in stack/versions.yaml")
    ports: list[tuple[str, int]] = []
    if net.get("apiServerPort"):
        ports.append((net.get("apiServerAddress", "127.0.0.1"), int(net["apiServerPort"])))
    for m in nodes[0].get("extraPortMappings") or []:
        ports.append((m.get("listenAddress", "0.0.0.0"), int(m["hostPort"])))
    return KindConfig(path=path, pod_subnet=net["podSubnet"], service_subnet=net["serviceSubnet"],
                      host_ports=tuple(ports), sha256=hashlib.sha256(raw).hexdigest())


def check_distinct_subnets(configs: dict[str, KindConfig]) -> None:
    """Two clusters on one docker network must not share pod or service ranges."""
    seen: list[tuple[str, str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
    for name, cfg in configs.items():
        for key, cidr in (("podSubnet", cfg.pod_subnet), ("serviceSubnet", cfg.service_subnet)):
            net = ipaddress.ip_network(cidr)
            for other, okey, onet in seen:
                if net.version == onet.version and net.overlaps(onet):
                    raise ConfigError(f"kind config {cfg.path}: networking.{key} {cidr} overlaps {other}'s {okey} {onet}")
            seen.append((name, key, net))


class State:
    """Files the bring-up keeps per cluster under <cache>/clusters/<name>/ (kubeconfigs, marker)."""

    def __init__(self, cache_dir: Path):
        self.root = cache_dir / "clusters"

    def dir(self, name: str) -> Path:
        return self.root / name

    def kubeconfig(self, name: str) -> Path:
        """Server = the control-plane container's address on the kind network (reachable from both clusters)."""
        return self.dir(name) / "kubeconfig"

    def host_kubeconfig(self, name: str) -> Path:
        """What kind writes on create (127.0.0.1), kept out of the user's ~/.kube/config."""
        return self.dir(name) / "kubeconfig-host"

    def client_kubeconfig(self, name: str) -> Path:
        """The kubeconfig this host's kubectl/helm/istioctl use.

        The control-plane address on Linux, where the host routes to the kind
        network; kind's loopback one on macOS, where Docker Desktop does not.
        """
        return self.host_kubeconfig(name) if platform.system() == "Darwin" else self.kubeconfig(name)

    def owned(self, names: list[str]) -> list[str]:
        """Which of these clusters carry our marker."""
        return [n for n in names if self.read_marker(n) is not None]

    def marker(self, name: str) -> Path:
        return self.dir(name) / MARKER

    def file(self, name: str, filename: str) -> Path:
        return self.dir(name) / filename

    def read_marker(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.marker(name).read_text())
        except (OSError, ValueError):
            return None

    def write_marker(self, name: str, container_id: str, config_sha256: str, image: str) -> None:
        write_private(self.marker(name), json.dumps(
            {"cluster": name, "container_id": container_id, "config_sha256": config_sha256, "image": image}, indent=2))


def write_private(path: Path, text: str) -> None:
    """Write a file readable by the owner only (kubeconfigs, generated Secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def internal_kubeconfig(kind_internal: str, name: str, ip: str) -> str:
    """`kind get kubeconfig --internal` with the container hostname swapped for its IP (kind_provisioner.sh)."""
    return kind_internal.replace(f"https://{name}-control-plane:", f"https://{ip}:")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost names: unreachable from inside another cluster."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def metallb_pools(ipam_config_json: str, names: list[str]) -> dict[str, str]:
    """One address range per cluster from the tail of the kind network's IPv4 subnet.

    Like Istio's kind_provisioner.sh: skip the low addresses docker hands to
    containers and give each cluster its own slice.
    """
    configs = json.loads(ipam_config_json) or []
    subnets = [ipaddress.ip_network(c["Subnet"]) for c in configs if c.get("Subnet")]
    v4 = [s for s in subnets if s.version == 4]
    if not v4:
        raise ValueError(f"the kind docker network has no IPv4 subnet ({ipam_config_json.strip()})")
    net = v4[0]
    # End 6 short of the broadcast address; slices go downward, primary first.
    last = int(net.broadcast_address) - 6
    pools = {}
    for i, name in enumerate(names):
        hi = last - i * POOL_SIZE
        lo = hi - POOL_SIZE + 1
        if lo <= int(net.network_address) + 256:
            raise ValueError(f"the kind docker network {net} is too small for {len(names)} MetalLB slices")
        pools[name] = f"{ipaddress.ip_address(lo)}-{ipaddress.ip_address(hi)}"
    return pools
