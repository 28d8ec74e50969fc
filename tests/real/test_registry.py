"""The real-servers layer: each go.mod pins what versions.yaml says, builds are cached, a missing binary skips (fails in CI)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import tests.real as real
from tests.real import build
from tests.real.registry import REGISTRY, Binary, prometheus_module_version, version_of


def requires(go_mod: str) -> dict[str, str]:
    """module -> version of every require in a go.mod (block or single line)."""
    return dict(re.findall(r"^\s*(?:require\s+)?([\w.\-/]+\.[\w.\-/]+)\s+(v\S+)", go_mod, re.M))


def replaces(go_mod: str) -> list[str]:
    return [" ".join(r.split()) for r in re.findall(r"^replace\s+(.+)$", go_mod, re.M)]


@pytest.mark.parametrize("release, module", [
    ("v3.14.0", "v0.314.0"),  # the stack's pin
    ("v3.4.2", "v0.304.2"),   # the minor is zero-padded to two digits
    ("v3.0.0", "v0.300.0"),
    ("v2.42.0", "v0.42.0"),   # 2.x kept the minor as is
])
def test_prometheus_module_version_follows_upstreams_rule(release, module):
    assert prometheus_module_version(release) == module


def test_prometheus_is_the_stacks_pin():
    assert REGISTRY["prometheus"].version == version_of("prometheus") == "v3.14.0"


def test_alertmanager_is_the_stacks_pin_and_its_ui_stand_in_is_the_projects():
    b = REGISTRY["alertmanager"]
    assert b.version == version_of("alertmanager") == "v0.34.0"  # kube-prometheus-stack 88.5.3 values.yaml
    assert b.module_version(b.version) == "v0.34.0"  # the module is tagged like the release
    for ours in b.embed_placeholders.values():
        assert (Path(real.__file__).parent / ours).is_file()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_go_mod_requires_the_pinned_module_version(name):
    b = REGISTRY[name]
    go_mod = (b.folder / "go.mod").read_text()
    assert requires(go_mod).get(b.module) == b.module_version(b.version), (
        f"{b.folder}/go.mod requires {b.module} {requires(go_mod).get(b.module)}; the pin {b.version} means "
        f"{b.module_version(b.version)}: run `go get {b.module}@{b.module_version(b.version)} && go mod tidy` there")
    assert (b.folder / "go.sum").is_file()
    assert f'_ "{b.command}"' in (b.folder / "tools.go").read_text()


def test_prometheus_go_mod_repeats_upstreams_replace():
    """Prometheus' own go.mod replaces cloud.google.com/go; a module requiring it must say the same."""
    b = REGISTRY["prometheus"]
    ours = replaces((b.folder / "go.mod").read_text())
    assert ours == ["cloud.google.com/go => cloud.google.com/go v0.123.0"]
    modcache = os.environ.get("GOMODCACHE") or str(Path.home() / "go" / "pkg" / "mod")
    upstream = Path(modcache) / "cache/download/github.com/prometheus/prometheus/@v" / f"{b.module_version(b.version)}.mod"
    if upstream.is_file():  # what the Go module proxy served, when this machine has fetched it
        assert replaces(upstream.read_text()) == ours


# A stand-in for the Go client: prints package lines as `go build -v` does and writes the -o file.
FAKE_GO = """#!/bin/sh
echo "$@" >> "$FAKE_GO_CALLS"
[ "$1" = mod ] && { mkdir -p vendor; pwd > "$FAKE_GO_CALLS.workdir"; exit 0; }
for a in "$@"; do case "$a" in -overlay=*) cp "${a#-overlay=}" "$FAKE_GO_CALLS.overlay";; esac; done
[ -n "$FAKE_GO_FAIL" ] && { echo "go: github.com/x@v1: dial tcp: lookup proxy.golang.org: no such host" >&2; exit 1; }
while [ "$1" != "-o" ]; do shift; done
echo "go: downloading github.com/example/dep v1.0.0" >&2
for p in a b c; do echo "github.com/example/$p" >&2; sleep 0.2; done
echo built > "$2"
"""


@pytest.fixture
def fake_go(tmp_path, monkeypatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    go = bindir / "go"
    go.write_text(FAKE_GO)
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "calls"
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_GO_CALLS", str(calls))
    monkeypatch.setenv("MONITORING_CONFORMANCE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MONITORING_CONFORMANCE_REAL_SOURCE", "build")  # these tests are about the build
    monkeypatch.setattr(build, "PROGRESS_EVERY", 0.25)
    monkeypatch.setattr(real, "_unavailable", {})
    return calls


def test_a_cold_build_reports_progress_and_lands_in_the_cache_by_version(fake_go, tmp_path):
    lines: list[str] = []
    b = REGISTRY["prometheus"]
    got = build.ensure(b, progress=lines.append)
    assert got == tmp_path / "cache" / "real" / "prometheus-v3.14.0" / "prometheus"
    assert got.read_text() == "built\n"
    assert lines[0] == "prometheus v3.14.0: MONITORING_CONFORMANCE_REAL_SOURCE=build, so built rather than downloaded"
    assert lines[1].startswith("building prometheus v3.14.0 (Go module github.com/prometheus/prometheus v0.314.0) "
                               "from tests/real/go/prometheus")
    assert any(re.match(r"  prometheus v3\.14\.0: \d+ s, \d+ packages compiled, 1 modules downloaded", l) for l in lines)
    assert re.match(r"built prometheus v3\.14\.0 in \d+ s: ", lines[-1])
    call = fake_go.read_text().split()
    assert call[:2] == ["build", "-v"] and call[-1] == b.command
    assert "-ldflags=-X github.com/prometheus/common/version.Version=3.14.0" in fake_go.read_text()
    # Warm: the cache answers and Go is not run again.
    assert build.ensure(b, progress=lines.append) == got
    assert len(fake_go.read_text().splitlines()) == 1
    assert build.source_record(b).read_text() == "built with go from github.com/prometheus/prometheus v0.314.0\n"


def test_a_module_lacking_an_embedded_file_is_built_through_a_vendor_overlay(fake_go, tmp_path):
    """Alertmanager's ui/app/dist is made by its release build, not in the module: vendored, with the stand-in."""
    import json

    b = REGISTRY["alertmanager"]
    got = build.ensure(b, progress=lambda line: None)
    assert got.read_text() == "built\n"
    calls = fake_go.read_text().splitlines()
    assert calls[0] == "mod vendor -e"
    assert calls[1].startswith("build -v -o ") and " -mod=vendor -overlay=" in calls[1]
    assert "-ldflags=-X github.com/prometheus/common/version.Version=0.34.0" in calls[1]
    workdir = Path(Path(str(fake_go) + ".workdir").read_text().strip())
    overlay = json.loads(Path(str(fake_go) + ".overlay").read_text())["Replace"]
    assert overlay == {str(workdir / "vendor/github.com/prometheus/alertmanager/ui/app/dist/index.html"):
                       str(Path(real.__file__).parent / "placeholders" / "alertmanager-ui.html")}
    assert not workdir.exists()  # the vendored copy is removed after the build
    assert "tests/real/go/alertmanager" not in str(workdir)  # the project's module folder is left as it is


def test_a_failed_build_says_why_and_how_to_get_the_binary(fake_go, monkeypatch):
    monkeypatch.setenv("FAKE_GO_FAIL", "1")
    with pytest.raises(build.Unavailable) as e:
        build.ensure(REGISTRY["prometheus"], progress=lambda line: None)
    msg = str(e.value)
    assert "prometheus v3.14.0 could not be built (go build exited 1: go: github.com/x@v1: dial tcp: lookup" in msg
    assert "python -m tests.real build prometheus" in msg and "\n" not in msg
    assert not list(build.cache_root().rglob("*.partial"))  # nothing half-built left behind


def test_without_go_a_test_is_skipped_with_one_line_saying_how(fake_go, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as e:
        real.require("prometheus")
    assert str(e.value).startswith("prometheus v3.14.0 is not built and `go` is not on PATH; get it with "
                                   "`python -m tests.real build prometheus`")


def test_in_ci_a_missing_binary_fails_instead(fake_go, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as e:
        real.require("prometheus")
    assert str(e.value).startswith("CI=true: prometheus v3.14.0 is not built")


def test_a_binary_already_in_the_cache_needs_no_go(fake_go, monkeypatch):
    b = REGISTRY["prometheus"]
    dest = build.cached_path(b)
    dest.parent.mkdir(parents=True)
    dest.write_text("prebuilt")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert real.require("prometheus") == dest


def test_the_cli_builds_and_prints_the_path(fake_go, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    out = subprocess.run([sys.executable, "-m", "tests.real", "build"],
                         capture_output=True, text=True, env=env, cwd=Path(__file__).parents[2], timeout=60)
    assert out.returncode == 0, out.stderr
    assert "building prometheus v3.14.0" in out.stdout
    assert (f"prometheus: {tmp_path}/cache/real/prometheus-v3.14.0/prometheus (built with go from "
            "github.com/prometheus/prometheus v0.314.0)") in out.stdout


def test_an_entry_without_a_version_names_both_places():
    with pytest.raises(KeyError, match=r"no version for 'nothing' in stack/versions.yaml apps: or .*pins.yaml"):
        Binary("x", module="m", command="c", version_key="nothing").version


@pytest.mark.parametrize("release, module", [
    ("2.13.0", "v1.76.0"),   # the stack's pin (the image tag): CHANGELOG.md "v1.76.0 / v2.13.0 (2025-12-03)"
    ("v2.13.0", "v1.76.0"),  # the tag as git writes it
    ("v2.0.0", "v1.63.0"),   # the first v2: "v1.63.0 / v2.0.0 (2024-11-10)"
    ("v2.7.0", "v1.70.0"),   # "v1.70.0 / v2.7.0 (2025-06-10)"
])
def test_jaeger_module_version_follows_the_changelogs_pairs(release, module):
    from tests.real.registry import jaeger_module_version

    assert jaeger_module_version(release) == module


def test_jaeger_is_the_stacks_pin():
    assert REGISTRY["jaeger"].version == version_of("jaeger") == "2.13.0"
