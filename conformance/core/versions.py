"""Pinned versions from stack/versions.yaml, and the Istio/Kubernetes support check."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conformance.core import yamltext
from conformance.core.errors import ConfigError
from conformance.core.stack import STACK_DIR

VERSIONS_FILE = STACK_DIR / "versions.yaml"


@dataclass(frozen=True)
class Tool:
    """A command-line tool the bring-up runs, pinned to one version."""

    name: str
    version: str
    version_args: tuple[str, ...]
    url: str
    sha256: dict[str, str | None]  # "<os>-<arch>" -> hex digest, None when unverified
    sha256_url: str = ""
    archive_member: str = ""  # path inside a .tar.gz; empty for a bare binary

    def url_for(self, os_name: str, arch: str) -> str:
        return _fill(self.url, self.version, os_name, arch)

    def sha256_url_for(self, os_name: str, arch: str) -> str:
        return _fill(self.sha256_url, self.version, os_name, arch)

    def member_for(self, os_name: str, arch: str) -> str:
        return _fill(self.archive_member, self.version, os_name, arch)


@dataclass(frozen=True)
class Chart:
    """A Helm chart pinned to one version, installed under one release name."""

    key: str
    repo: str
    name: str
    version: str
    release: str


@dataclass(frozen=True)
class Versions:
    """Everything stack/versions.yaml pins."""

    path: Path
    node_image: str
    node_kubernetes: str
    istio: str
    istio_kubernetes_support: dict[str, tuple[str, str]]
    metallb: Chart
    charts: dict[str, Chart]
    loki_image_tag: str
    tools: dict[str, Tool]
    images: tuple[str, ...]
    apps: dict[str, str] = field(default_factory=dict)
    profile_images: dict[str, tuple[str, ...]] = field(default_factory=dict)  # profile -> its extra images

    def images_for(self, profile: str) -> tuple[str, ...]:
        """The images a stack of this profile runs: the common list plus the profile's own."""
        return self.images + tuple(i for i in self.profile_images.get(profile, ()) if i not in self.images)


def _fill(template: str, version: str, os_name: str, arch: str) -> str:
    # Istio names macOS "osx" in its release files (release/downloadIstioCtl.sh).
    istio_os = "osx" if os_name == "darwin" else os_name
    return template.format(version=version, os=os_name, arch=arch, istio_os=istio_os)


def load_versions(path: Path = VERSIONS_FILE) -> Versions:
    """Read the pins; a missing or malformed key is a ConfigError naming it."""
    try:
        doc = yamltext.parse(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"versions {path}: cannot read: {e}") from None
    try:
        return _parse(path, doc)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"versions {path}: missing or malformed key {e}") from None


def _parse(path: Path, doc: dict[str, Any]) -> Versions:
    istio = str(doc["istio"]["version"])
    charts = {key: Chart(key=key, repo=c["repo"], name=c["name"], version=str(c["version"]), release=c["release"])
              for key, c in doc["charts"].items()}
    m = doc["metallb"]["chart"]
    metallb = Chart(key="metallb", repo=m["repo"], name=m["name"], version=str(m["version"]), release="metallb")
    tools = {
        name: Tool(
            name=name,
            version=str(t["version"]),
            version_args=tuple(t["version_args"]),
            url=t["url"],
            sha256=dict(t.get("sha256") or {}),
            sha256_url=t.get("sha256_url", ""),
            archive_member=t.get("archive_member", ""),
        )
        for name, t in doc["tools"].items()
    }
    loki_tag = str(doc["charts"]["loki-stack"]["loki_image_tag"])
    apps = {str(k): str(v) for k, v in (doc.get("apps") or {}).items()}
    subs = {**apps, "istio": istio, "loki": loki_tag, "metallb": metallb.version,
            "kiali": charts["kiali-operator"].version}
    images = tuple(img.format_map(subs) for img in doc["images"])
    profile_images = {str(name): tuple(img.format_map(subs) for img in imgs)
                      for name, imgs in (doc.get("profile_images") or {}).items()}
    support = {str(k): (str(v[0]), str(v[1])) for k, v in doc["istio"]["kubernetes_support"].items()}
    return Versions(
        path=path,
        node_image=doc["kind_node_image"]["image"],
        node_kubernetes=str(doc["kind_node_image"]["kubernetes"]),
        istio=istio,
        istio_kubernetes_support=support,
        metallb=metallb,
        charts=charts,
        loki_image_tag=loki_tag,
        tools=tools,
        images=images,
        apps=apps,
        profile_images=profile_images,
    )


def minor(version: str) -> tuple[int, int]:
    """(major, minor) of "1.35", "v1.35.0" or "kindest/node:v1.35.0@sha256:..."."""
    m = re.search(r"v?(\d+)\.(\d+)", version.split(":", 1)[-1] if "/" in version else version)
    if not m:
        raise ValueError(f"no version in {version!r}")
    return int(m.group(1)), int(m.group(2))


def check_node_image(versions: Versions, image: str | None = None) -> None:
    """Refuse a kind node image whose Kubernetes is outside the pinned Istio's supported range."""
    image = image or versions.node_image
    istio_minor = "%d.%d" % minor(versions.istio)
    span = versions.istio_kubernetes_support.get(istio_minor)
    if span is None:
        raise ConfigError(f"versions {versions.path}: istio.kubernetes_support has no entry for Istio {istio_minor}")
    k8s = minor(image)
    if not (minor(span[0]) <= k8s <= minor(span[1])):
        raise ConfigError(
            f"versions {versions.path}: kind node image {image} is Kubernetes {k8s[0]}.{k8s[1]}, "
            f"outside Istio {istio_minor}'s supported range {span[0]}-{span[1]}; pick a node image in that range")
    if "%d.%d" % k8s != versions.node_kubernetes:
        raise ConfigError(f"versions {versions.path}: kind_node_image.kubernetes {versions.node_kubernetes} "
                          f"does not match the image {image}")


def normalize_image(ref: str) -> str:
    """The reference containerd stores: docker.io/library/ for bare names, :latest when untagged."""
    name, digest = (ref.split("@", 1) + [""])[:2]
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = "docker.io/" + name
    if name.count("/") == 1 and name.startswith("docker.io/"):
        name = "docker.io/library/" + name.removeprefix("docker.io/")
    if ":" not in name.rsplit("/", 1)[-1] and not digest:
        name += ":latest"
    return name + (f"@{digest}" if digest else "")
