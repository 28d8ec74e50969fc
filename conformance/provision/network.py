"""What a plan fetches from the network, and --offline: every chart, manifest and image from a folder instead.

A step reaches the network when its argv names a chart repository (`--repo URL`), an OCI chart
(`oci://...`) or a remote manifest (`--filename https://...`). `localize` rewrites those to the
folder (DIR/charts/<chart>-<version>.tgz as `helm pull` names it, DIR/manifests/<file name>), so an
offline plan has no such step by construction; `fetches` lists the rest a plan needs from the network
(node image, images the nodes pull, Grafana's dashboard downloads, tool downloads).
"""

from __future__ import annotations

import dataclasses
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import yaml

from conformance.core.errors import ConfigError
from conformance.provision import tools
from conformance.provision.preflight import GRAFANA_COM
from conformance.provision.steps import Step
from conformance.core.versions import Versions, normalize_image

# Where each image registry answers (docker.io's registry API is not on docker.io itself).
REGISTRY_API = {"docker.io": "registry-1.docker.io"}


@dataclass(frozen=True)
class Fetch:
    """One thing the plan downloads: what, from where, and when only under a condition."""

    what: str
    url: str
    only_if: str = ""
    is_download: bool = False  # a file fetched by its URL (a tool's release), whose redirects are followed

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or self.url

    def line(self) -> str:
        return f"{self.what}: {self.url}" + (f" (only if {self.only_if})" if self.only_if else "")


def step_urls(step: Step) -> list[str]:
    """The network locations a step's command fetches from (none for an offline plan)."""
    argv, urls = list(step.argv), []
    for i, a in enumerate(argv):
        before = argv[i - 1] if i else ""
        if before == "--repo" or a.startswith("oci://") or (before == "--filename" and _is_url(a)):
            urls.append(a)
    return urls


def _is_url(text: str) -> bool:
    return urlparse(text).scheme in ("http", "https")


def fetches(steps: list[Step], versions: Versions, profile: str, *, offline: bool, preload: bool,
            images: list[str]) -> list[Fetch]:
    """Everything the plan fetches from the network, one entry per download, in plan order."""
    out: list[Fetch] = []
    for s in steps:
        for url in step_urls(s):
            what = f"{s.title} ({s.cluster})" if s.cluster else s.title
            out.append(Fetch(f"{what}: {_chart_or_file(s, url)}", url))
    if not offline:
        out.append(Fetch(f"node image {versions.node_image} (kind create)", registry_url(versions.node_image),
                         "not in the local docker"))
        out.append(Fetch("Grafana dashboards by id (Grafana's init container)", GRAFANA_COM))
    if not preload:
        by_registry: dict[str, int] = {}
        for i in images:
            by_registry[registry_url(i)] = by_registry.get(registry_url(i), 0) + 1
        out += [Fetch(f"{n} pinned images pulled by the nodes (`python -m conformance.provision images` lists them; "
                      "--preload loads them from the local docker instead)", url) for url, n in by_registry.items()]
    if offline:  # tools come from PATH, the cache or its downloads/ folder, never the network (tools.resolve)
        return out
    os_name, arch = tools.host_platform()
    out += [Fetch(f"{t.name} {t.version}", t.url_for(os_name, arch), "not on PATH at that version nor in the cache", True)
            for t in versions.tools.values()]
    return out


def _chart_or_file(step: Step, url: str) -> str:
    argv = list(step.argv)
    if "--version" in argv and not url.startswith("oci://"):
        return f"chart {argv[argv.index('--install') + 2]} {argv[argv.index('--version') + 1]}"
    if url.startswith("oci://"):
        return f"chart {url.rsplit('/', 1)[-1]} {argv[argv.index('--version') + 1]}"
    return url.rsplit("/", 1)[-1]


def registry_url(image: str) -> str:
    """The registry API an image is pulled from (https://<registry>/v2/)."""
    registry = normalize_image(image).split("/", 1)[0]
    return f"https://{REGISTRY_API.get(registry, registry)}/v2/"


def hosts(items: list[Fetch]) -> list[str]:
    """Distinct hosts, in order of first need."""
    return list(dict.fromkeys(f.host for f in items))


# -- offline --------------------------------------------------------------------------------------


def localize(steps: list[Step], folder: Path) -> list[Step]:
    """The same steps with every chart and manifest taken from `folder`; a missing or wrong file is a ConfigError."""
    missing: list[str] = []
    out = [_localized(s, folder, missing) for s in steps]
    if missing:
        raise ConfigError(f"--offline {folder}: " + "; ".join(dict.fromkeys(missing)))
    return out


def _localized(step: Step, folder: Path, missing: list[str]) -> Step:
    urls = step_urls(step)
    if not urls:
        return step
    argv = list(step.argv)
    if "--install" in argv:
        argv = _local_chart(argv, folder, missing)
    else:
        argv = [str(_local_manifest(a, folder, missing)) if _is_url(a) else a for a in argv]
    return dataclasses.replace(step, argv=tuple(argv), title=f"{step.title} (from {folder})",
                               waits_for=step.waits_for.replace("downloaded and ", ""))


def _local_chart(argv: list[str], folder: Path, missing: list[str]) -> list[str]:
    """`<name> --repo URL` or `oci://.../<name>` becomes the archive; --version stays (helm ignores it for a path)."""
    at = argv.index("--install") + 2
    version = argv[argv.index("--version") + 1]
    source = argv[at]
    name = source.rsplit("/", 1)[-1]
    archive = folder / "charts" / f"{name}-{version}.tgz"
    problem = chart_problem(archive, name, version)
    if problem:
        repo = argv[argv.index("--repo") + 1] if "--repo" in argv else ""
        pull = f"helm pull {source}" + (f" --repo {repo}" if repo else "") + f" --version {version} -d {folder / 'charts'}"
        missing.append(f"{problem} (get it where there is network: {pull})")
    if "--repo" in argv:
        i = argv.index("--repo")
        del argv[i:i + 2]
    argv[at] = str(archive)
    return argv


def chart_problem(archive: Path, name: str, version: str) -> str:
    """Why `archive` is not chart `name` at `version` ("" when it is)."""
    if not archive.is_file():
        return f"{archive} missing"
    try:
        with tarfile.open(archive) as tar:  # the chart's own Chart.yaml: <dir>/Chart.yaml, not a subchart's
            top = next((m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml")), None)
            member = tar.extractfile(top) if top else None
            meta = yaml.safe_load(io.TextIOWrapper(member)) if member else None
    except (tarfile.TarError, KeyError, OSError, yaml.YAMLError) as e:
        return f"{archive} is not a chart archive ({e})"
    if not isinstance(meta, dict) or (meta.get("name"), str(meta.get("version"))) != (name, version):
        found = f"{meta.get('name')} {meta.get('version')}" if isinstance(meta, dict) else "no Chart.yaml"
        return f"{archive} holds {found}, not {name} {version}"
    return ""


def _local_manifest(url: str, folder: Path, missing: list[str]) -> Path:
    path = folder / "manifests" / url.rsplit("/", 1)[-1]
    if not path.is_file():
        missing.append(f"{path} missing (get it where there is network: curl -fsSL -o {path} {url})")
    return path
