"""The real servers the self-tests build: one entry each, with where its version comes from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Callable

import yaml

from conformance.provision.versions import load_versions

HERE = Path(__file__).parent
GO_DIR = HERE / "go"
# Versions of what stack/versions.yaml does not pin (servers the stack does not run as apps).
PINS_FILE = HERE / "pins.yaml"


def same(version: str) -> str:
    """The Go module is tagged like the release."""
    return version


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
    apps = load_versions().apps
    if key in apps:
        return apps[key]
    if key in pins():
        return pins()[key]
    raise KeyError(f"no version for {key!r} in stack/versions.yaml apps: or {PINS_FILE}")


def _prometheus_ldflags(version: str) -> list[str]:
    # .promu.yml at v3.14.0 stamps the version (without "v") into prometheus/common/version.
    return [f"-X github.com/prometheus/common/version.Version={version.removeprefix('v')}"]


def _alertmanager_ldflags(version: str) -> list[str]:
    # .promu.yml at v0.34.0 stamps the version (without "v") into prometheus/common/version, as for Prometheus.
    return [f"-X github.com/prometheus/common/version.Version={version.removeprefix('v')}"]


REGISTRY: dict[str, Binary] = {b.name: b for b in [
    Binary("prometheus", module="github.com/prometheus/prometheus",
           command="github.com/prometheus/prometheus/cmd/prometheus", version_key="prometheus",
           module_version=prometheus_module_version, ldflags=_prometheus_ldflags),
    # ui/web.go embeds app/dist, the web UI its release build makes with npm; the module zip has none of it.
    # The APIs the checks read (/api/v2, /-/ready, /metrics) do not use it: a one-page stand-in takes its place.
    Binary("alertmanager", module="github.com/prometheus/alertmanager",
           command="github.com/prometheus/alertmanager/cmd/alertmanager", version_key="alertmanager",
           ldflags=_alertmanager_ldflags, embed_placeholders={"ui/app/dist/index.html": "placeholders/alertmanager-ui.html"}),
]}
