"""The real servers the self-tests build: one entry each, with where its version comes from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Callable

import yaml

from conformance.core.versions import load_versions
from tests.real.release import Release

HERE = Path(__file__).parent
GO_DIR = HERE / "go"
# Versions of what stack/versions.yaml does not pin (servers the stack does not run as apps).
PINS_FILE = HERE / "pins.yaml"


def same(version: str) -> str:
    """The Go module is tagged like the release."""
    return version


def jaeger_module_version(version: str) -> str:
    """Jaeger v2 releases are cut with a v1 module tag: 2.13.0 -> v1.76.0 (CHANGELOG.md "v1.76.0 / v2.13.0").

    Every pair in CHANGELOG.md at v1.76.0, back to "v1.63.0 / v2.0.0", keeps the minor 63 apart.
    """
    m = re.fullmatch(r"v?2\.(\d+)\.(\d+)", version)
    if not m:
        raise ValueError(f"not a Jaeger v2 version: {version!r}")
    return f"v1.{int(m.group(1)) + 63}.{m.group(2)}"


def prometheus_module_version(version: str) -> str:
    """Prometheus' library tags: v3.14.0 -> v0.314.0, v2.42.0 -> v0.42.0.

    The rule of scripts/get_module_version.sh in prometheus/prometheus (v3.14.0).
    """
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\S+)", version)
    if not m:
        raise ValueError(f"not a Prometheus version: {version!r}")
    major, minor, rest = int(m.group(1)), int(m.group(2)), m.group(3)
    if major == 2:
        return f"v0.{minor}.{rest}"
    if major == 3:
        return f"v0.3{minor:02d}.{rest}"
    raise ValueError(f"no Go module scheme known for Prometheus {version}")


@dataclass(frozen=True)
class Binary:
    """One real server, built with `go build` from the project's module tests/real/go/<name>/."""

    name: str  # the executable's name, and its module folder under tests/real/go/
    module: str  # the upstream Go module that go.mod requires
    command: str  # the Go package of the command (tools.go imports it; go build builds it)
    version_key: str  # key in stack/versions.yaml `apps:`, else in tests/real/pins.yaml
    module_version: Callable[[str], str] = same  # release version -> Go module version
    ldflags: Callable[[str], list[str]] = field(default=lambda version: [])  # what the release build stamps in
    # Files a go:embed of the module needs that its release build generates and the module zip lacks:
    # path inside the module -> the project's stand-in under tests/real/ (built through a vendor overlay).
    embed_placeholders: dict[str, str] = field(default_factory=dict)
    # Where the pinned version's published release file lives, when it has one with a checksum (tests/real/release.py).
    release: Callable[[], Release | None] = field(default=lambda: None)

    @property
    def folder(self) -> Path:
        return GO_DIR / self.name

    @property
    def version(self) -> str:
        return version_of(self.version_key)


@cache
def pins() -> dict[str, str]:
    """tests/real/pins.yaml: versions the stack does not pin."""
    doc = yaml.safe_load(PINS_FILE.read_text()) or {}
    return {str(k): str(v) for k, v in (doc.get("pins") or {}).items()}


def version_of(key: str) -> str:
    """The stack's pin for key (stack/versions.yaml apps:), else tests/real/pins.yaml's."""
    if key == "kubernetes":
        return node_kubernetes_version()
    if key == "kind":  # a tool of the bring-up, pinned with its checksums under tools:
        return load_versions().tools["kind"].version
    apps = load_versions().apps
    if key in apps:
        return apps[key]
    if key in pins():
        return pins()[key]
    raise KeyError(f"no version for {key!r} in stack/versions.yaml apps: or {PINS_FILE}")


def node_kubernetes_version() -> str:
    """The node image's Kubernetes release, from its tag (stack/versions.yaml kind_node_image.image)."""
    image = load_versions().node_image
    m = re.search(r":(v\d+\.\d+\.\d+)(?:@|$)", image)
    if not m:
        raise ValueError(f"kind_node_image.image {image!r} has no vX.Y.Z tag")
    return m.group(1)


def kubernetes_staging_version(version: str) -> str:
    """The staging modules (k8s.io/api, ...) are tagged v0.X.Y for Kubernetes v1.X.Y."""
    m = re.fullmatch(r"v1\.(\d+\.\d+)", version)
    if not m:
        raise ValueError(f"not a Kubernetes 1.x release: {version!r}")
    return f"v0.{m.group(1)}"


def _kubernetes_ldflags(version: str) -> list[str]:
    # hack/lib/version.sh at the release stamps these into k8s.io/component-base/version (what /version serves).
    major, minor = version.removeprefix("v").split(".")[:2]
    return [f"-X k8s.io/component-base/version.{k}={v}"
            for k, v in (("gitVersion", version), ("gitMajor", major), ("gitMinor", minor))]


def _prometheus_ldflags(version: str) -> list[str]:
    # .promu.yml at v3.14.0 stamps the version (without "v") into prometheus/common/version.
    return [f"-X github.com/prometheus/common/version.Version={version.removeprefix('v')}"]


def _alertmanager_ldflags(version: str) -> list[str]:
    # .promu.yml at v0.34.0 stamps the version (without "v") into prometheus/common/version, as for Prometheus.
    return [f"-X github.com/prometheus/common/version.Version={version.removeprefix('v')}"]


def _pushgateway_ldflags(version: str) -> list[str]:
    # .promu.yml at v1.11.0 stamps the version (without "v") into prometheus/common/version, as for Prometheus.
    return [f"-X github.com/prometheus/common/version.Version={version.removeprefix('v')}"]


def _kube_state_metrics_ldflags(version: str) -> list[str]:
    # Makefile `build-local` at v2.20.0 stamps the tag (with "v") into prometheus/common/version, and the
    # client-go it was built with (`go list -m k8s.io/client-go`, here read from our go.mod) into
    # pkg/app.ClientGoVersion.
    m = re.search(r"^\s*k8s\.io/client-go (v\S+)", (GO_DIR / "kube-state-metrics" / "go.mod").read_text(), re.M)
    client_go = m.group(1) if m else "unknown"
    return ["-X github.com/prometheus/common/version.Version=" + version,
            "-X k8s.io/kube-state-metrics/v2/pkg/app.ClientGoVersion=" + client_go]


def _event_exporter_ldflags(version: str) -> list[str]:
    # The Dockerfile at v1.6.1 stamps VERSION into pkg/version.Version.
    return [f"-X github.com/resmoio/kubernetes-event-exporter/pkg/version.Version={version}"]


def _jaeger_ldflags(version: str) -> list[str]:
    # scripts/makefiles/BuildInfo.mk at v1.76.0: the v2 binary (BUILD_INFO_V2) gets the v2 tag in internal/version.
    return [f"-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v{version.removeprefix('v')}"]


def _promu_release(repo: str, name: str) -> Callable[[], Release]:
    """The release archives promu makes (.promu.yml tarball): <name>-<bare>.<os>-<arch>.tar.gz and sha256sums.txt."""
    base = f"https://github.com/{repo}/releases/download/{{version}}"
    return lambda: Release(url=f"{base}/{name}-{{bare}}.{{os}}-{{arch}}.tar.gz", sha256_url=f"{base}/sha256sums.txt",
                           member=f"{name}-{{bare}}.{{os}}-{{arch}}/{name}")


def _kubernetes_release(name: str) -> Callable[[], Release]:
    """dl.k8s.io serves each server binary with a .sha256 beside it (what setup-envtest and kubectl installs use)."""
    url = f"https://dl.k8s.io/release/{{version}}/bin/{{os}}/{{arch}}/{name}"
    return lambda: Release(url=url, sha256_url=url + ".sha256")


def _etcd_release() -> Release:
    """etcd's release archives and their SHA256SUMS (etcd-io/etcd release.sh)."""
    base = "https://github.com/etcd-io/etcd/releases/download/{version}"
    return Release(url=f"{base}/etcd-{{version}}-{{os}}-{{arch}}.tar.gz", sha256_url=f"{base}/SHA256SUMS",
                   member="etcd-{version}-{os}-{arch}/etcd")


def _kind_release() -> Release:
    """The bring-up's own kind download, with the digests stack/versions.yaml pins for it."""
    tool = load_versions().tools["kind"]
    return Release(url=tool.url, sha256_url=tool.sha256_url, sha256={k: v for k, v in tool.sha256.items() if v})


# Built only, never downloaded: kwok publishes no checksum beside its binaries; kube-state-metrics and the event
# exporter publish images only; Jaeger v2's archive and checksum names were not confirmed at 2.13.0.
REGISTRY: dict[str, Binary] = {b.name: b for b in [
    Binary("prometheus", module="github.com/prometheus/prometheus",
           command="github.com/prometheus/prometheus/cmd/prometheus", version_key="prometheus",
           module_version=prometheus_module_version, ldflags=_prometheus_ldflags,
           release=_promu_release("prometheus/prometheus", "prometheus")),
    # The real control plane of the proving ground (tests/real/kube.py): the node image's Kubernetes, the etcd
    # it was tested with, and kwok for nodes and pod lifecycles.
    *(Binary(name, module="k8s.io/kubernetes", command=f"k8s.io/kubernetes/cmd/{name}", version_key="kubernetes",
             ldflags=_kubernetes_ldflags, release=_kubernetes_release(name))
      for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")),
    Binary("etcd", module="go.etcd.io/etcd/server/v3", command="go.etcd.io/etcd/server/v3", version_key="etcd", release=_etcd_release),
    Binary("kwok", module="sigs.k8s.io/kwok", command="sigs.k8s.io/kwok/cmd/kwok", version_key="kwok"),
    # The bring-up's kind, built to capture the kubeadm config it really writes (tests/provision/test_kind_config.py).
    Binary("kind", module="sigs.k8s.io/kind", command="sigs.k8s.io/kind", version_key="kind", release=_kind_release),
    # ui/web.go embeds app/dist, the web UI its release build makes with npm; the module zip has none of it.
    # The APIs the checks read (/api/v2, /-/ready, /metrics) do not use it: a one-page stand-in takes its place.
    Binary("alertmanager", module="github.com/prometheus/alertmanager",
           command="github.com/prometheus/alertmanager/cmd/alertmanager", version_key="alertmanager",
           ldflags=_alertmanager_ldflags, embed_placeholders={"ui/app/dist/index.html": "placeholders/alertmanager-ui.html"},
           release=_promu_release("prometheus/alertmanager", "alertmanager")),
    # The kubebench part's Pushgateway. Its web assets are vfsgen Go source in the module (asset/assets_vfsdata.go,
    # no go:embed), so the module zip builds as it is; the main package is the module root.
    Binary("pushgateway", module="github.com/prometheus/pushgateway", command="github.com/prometheus/pushgateway",
           version_key="pushgateway", ldflags=_pushgateway_ldflags,
           release=_promu_release("prometheus/pushgateway", "pushgateway")),
    # Run in-cluster programs against the real control plane with a kubeconfig (tests/proving_ksm.py).
    Binary("kube-state-metrics", module="k8s.io/kube-state-metrics/v2", command="k8s.io/kube-state-metrics/v2",
           version_key="kube-state-metrics", ldflags=_kube_state_metrics_ldflags),
    # The events part's exporter, run against the real control plane of the proving ground (tests/proving_events.py).
    Binary("kubernetes-event-exporter", module="github.com/resmoio/kubernetes-event-exporter",
           command="github.com/resmoio/kubernetes-event-exporter", version_key="kubernetes-event-exporter",
           ldflags=_event_exporter_ldflags),
    # cmd/query/app/ui embeds actual/*, which in the module zip is only a .gitignore: it builds, and serves its own
    # placeholder page for the UI. The query API the checks read (/api/services, /api/traces) does not use the UI.
    Binary("jaeger", module="github.com/jaegertracing/jaeger", command="github.com/jaegertracing/jaeger/cmd/jaeger",
           version_key="jaeger", module_version=jaeger_module_version, ldflags=_jaeger_ldflags),
]}
