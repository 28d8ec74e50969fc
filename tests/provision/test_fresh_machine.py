"""A fresh machine with nothing on PATH but Python gets every pinned tool from the cache, checksum verified.

Real release bytes cannot be served here, so the proof has three parts:
the committed digests are the issue's published values; with those digests, the
tool cache refuses any other bytes (a loopback server serves fakes at the pinned
file names); and the same code path, given the fakes' own digests, resolves all
four tools with nothing but Python on PATH.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from conformance.provision import tools
from conformance.core.versions import VERSIONS_FILE, load_versions

# Issue 8, item 8: the published sha256 values (cert-manager/makefile-modules
# modules/tools/00_mod.mk for kind, kubectl and helm; helm v3.19.0's release notes
# for helm; one public source for istioctl on Linux).
ISSUE_DIGESTS = {
    "kind": {"linux-amd64": "eb244cbafcc157dff60cf68693c14c9a75c4e6e6fedaf9cd71c58117cb93e3fa",
             "linux-arm64": "8e1014e87c34901cc422a1445866835d1e666f2a61301c27e722bdeab5a1f7e4",
             "darwin-amd64": "a8b3cf77b2ad77aec5bf710d1a2589d9117576132af812885cad41e9dede4d4e",
             "darwin-arm64": "88bf554fe9da6311c9f8c2d082613c002911a476f6b5090e9420b35d84e70c5c"},
    "kubectl": {"linux-amd64": "a2e984a18a0c063279d692533031c1eff93a262afcc0afdc517375432d060989",
                "linux-arm64": "58f82f9fe796c375c5c4b8439850b0f3f4d401a52434052f2df46035a8789e25",
                "darwin-amd64": "2447cb78911b10a667202b078eeb30541ec78d1280c3682921dc81607e148d96",
                "darwin-arm64": "cf699c56340dc775230fde4ef84237d27563ea6ef52164c7d078072b586c3918"},
    "helm": {"linux-amd64": "a7f81ce08007091b86d8bd696eb4d86b8d0f2e1b9f6c714be62f82f96a594496",
             "linux-arm64": "440cf7add0aee27ebc93fada965523c1dc2e0ab340d4348da2215737fc0d76ad",
             "darwin-amd64": "09a108c0abda42e45af172be65c49125354bf7cd178dbe10435e94540e49c7b9",
             "darwin-arm64": "31513e1193da4eb4ae042eb5f98ef9aca7890cfa136f4707c8d4f70e2115bef6"},
    "istioctl": {"linux-amd64": "d260852df36a987d278a0c530a9438e9c410b436e20204c13fcb0042dbc253a9",
                 "linux-arm64": "033c21c7565d6966a74de09b6c09a8e358a2332d8d8b31e0a28077f02e8d48c7",
                 # No pinned checksum: verified against the release's own .sha256 file.
                 "darwin-amd64": None, "darwin-arm64": None},
}
VERSION_OUTPUT = {"kind": "kind v0.31.0 go1.25.5 {os}/{arch}", "kubectl": "Client Version: v1.35.0",
                  "helm": "v3.19.0+g3d8990f", "istioctl": "client version: 1.29.6"}
PLATFORMS = [("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64")]


def test_the_committed_digests_are_the_issue_s_published_values():
    pinned = {name: t.sha256 for name, t in load_versions().tools.items()}
    assert pinned == ISSUE_DIGESTS
    for digests in pinned.values():
        for d in digests.values():
            assert d is None or re.fullmatch(r"[0-9a-f]{64}", d)


def test_each_digest_line_names_its_source():
    text = VERSIONS_FILE.read_text()
    for digests in ISSUE_DIGESTS.values():
        for platform, d in digests.items():
            (line,) = [ln for ln in text.splitlines() if (d or "") in ln and ln.strip().startswith(platform + ":")][:1]
            assert "#" in line, line


# -- a loopback release server ------------------------------------------------------------------------


def fake_binary(name: str, os_name: str, arch: str) -> bytes:
    """Stands in for a release binary: prints the pinned version, needs nothing but this Python."""
    line = VERSION_OUTPUT[name].format(os=os_name, arch=arch)
    return f"#!{sys.executable} -S\nprint({line!r})\n".encode()


def tar_gz(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def release_files(os_name: str, arch: str) -> dict[str, bytes]:
    """tool -> the bytes its pinned URL serves (archives for helm and istioctl)."""
    out = {}
    for name, tool in load_versions().tools.items():
        binary = fake_binary(name, os_name, arch)
        out[name] = tar_gz(tool.member_for(os_name, arch), binary) if tool.archive_member else binary
    return out


def loopback_versions(tmp_path: Path, base: str, digests: dict[str, dict[str, str | None]] | None) -> Path:
    """stack/versions.yaml with every download URL on the loopback server; digests replaced when given."""
    doc = yaml.safe_load(VERSIONS_FILE.read_text())
    for name, t in doc["tools"].items():
        t["url"] = t["url"].replace("https://", f"{base}/")
        t["sha256_url"] = t["sha256_url"].replace("https://", f"{base}/")
        if digests is not None:
            t["sha256"] = digests[name]
    path = tmp_path / "versions.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def route(url: str, base: str) -> str:
    return url.removeprefix(base)


@pytest.fixture
def only_python_on_path(tmp_path, monkeypatch):
    bin_dir = tmp_path / "python-only"
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python3")
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.mark.parametrize("os_name,arch", PLATFORMS, ids=lambda v: v)
def test_with_the_real_digests_any_other_bytes_are_refused(http_server, tmp_path, only_python_on_path, os_name, arch):
    base, routes = http_server
    versions = load_versions(loopback_versions(tmp_path, base, None))
    for name, data in release_files(os_name, arch).items():
        tool = versions.tools[name]
        routes[route(tool.url_for(os_name, arch), base)] = (200, data, None)
        pinned = ISSUE_DIGESTS[name][f"{os_name}-{arch}"]
        if pinned is None:
            # What the release would publish next to the real file: not these bytes' digest.
            routes[route(tool.sha256_url_for(os_name, arch), base)] = (200, b"0" * 64 + b"  file\n", None)
        with pytest.raises(tools.ToolError, match="checksum mismatch") as e:
            tools.resolve(tool, tmp_path / "cache", os_name, arch, say=lambda line: None)
        assert f"got sha256 {hashlib.sha256(data).hexdigest()}" in str(e.value)
        assert (f"pinned {pinned}" if pinned else "published at") in str(e.value)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()], "nothing refused is kept"


def test_a_fresh_machine_resolves_every_tool_from_the_cache_verified(http_server, tmp_path, only_python_on_path):
    base, routes = http_server
    os_name, arch = "linux", "amd64"
    files = release_files(os_name, arch)
    digests = {name: {f"{os_name}-{arch}": hashlib.sha256(data).hexdigest()} for name, data in files.items()}
    versions = load_versions(loopback_versions(tmp_path, base, digests))
    for name, data in files.items():
        routes[route(versions.tools[name].url_for(os_name, arch), base)] = (200, data, None)
    cache = tmp_path / "cache"
    resolved = {name: tools.resolve(t, cache, os_name, arch) for name, t in versions.tools.items()}
    for name, path in resolved.items():
        assert path == cache / "tools" / f"{name}-{versions.tools[name].version}" / name
        assert path.read_bytes() == fake_binary(name, os_name, arch), "the archive member, unpacked"
        assert (path.parent / f"{name}.sha256").read_text().strip() == hashlib.sha256(path.read_bytes()).hexdigest()
    # A second run is offline: the cache is used, each binary checked before it is run for its version.
    routes.clear()
    again = {name: tools.resolve(t, cache, os_name, arch) for name, t in versions.tools.items()}
    assert again == resolved


def test_an_unpinned_platform_is_verified_against_the_published_checksum_and_says_how_to_pin_it(
        http_server, tmp_path, only_python_on_path):
    base, routes = http_server
    versions = load_versions(loopback_versions(tmp_path, base, None))
    tool = versions.tools["istioctl"]
    data = release_files("darwin", "arm64")["istioctl"]
    digest = hashlib.sha256(data).hexdigest()
    assert tool.url_for("darwin", "arm64").endswith("/istioctl-1.29.6-osx-arm64.tar.gz")
    routes[route(tool.url_for("darwin", "arm64"), base)] = (200, data, None)
    routes[route(tool.sha256_url_for("darwin", "arm64"), base)] = (
        200, f"{digest}  istioctl-1.29.6-osx-arm64.tar.gz\n".encode(), None)
    said: list[str] = []
    path = tools.resolve(tool, tmp_path / "cache", "darwin", "arm64", say=said.append)
    assert path.read_bytes() == fake_binary("istioctl", "darwin", "arm64")
    (line,) = said
    assert "no pinned sha256, so verified against the checksum the release publishes next to it" in line
    assert f"add `darwin-arm64: {digest}` under tools.istioctl.sha256 in stack/versions.yaml" in line


def test_an_unpinned_platform_without_its_published_checksum_is_not_downloaded(http_server, tmp_path,
                                                                                only_python_on_path):
    base, routes = http_server
    tool = load_versions(loopback_versions(tmp_path, base, None)).tools["istioctl"]
    routes[route(tool.url_for("darwin", "amd64"), base)] = (200, release_files("darwin", "amd64")["istioctl"], None)
    with pytest.raises(tools.ToolError, match="no pinned sha256 for darwin-amd64.*cannot be fetched"):
        tools.resolve(tool, tmp_path / "cache", "darwin", "amd64")
    assert not (tmp_path / "cache" / "tools").exists() or not any((tmp_path / "cache" / "tools").rglob("istioctl"))


# -- nothing from the cache runs unchecked --------------------------------------------------------------


def installed(http_server, tmp_path, name: str):
    base, routes = http_server
    data = release_files("linux", "amd64")[name]
    versions = load_versions(loopback_versions(tmp_path, base, {
        n: {"linux-amd64": hashlib.sha256(data).hexdigest() if n == name else None} for n in ISSUE_DIGESTS}))
    tool = versions.tools[name]
    routes[route(tool.url_for("linux", "amd64"), base)] = (200, data, None)
    return tool, tools.resolve(tool, tmp_path / "cache", "linux", "amd64"), data


def test_a_cached_binary_changed_after_verification_is_not_run(http_server, tmp_path, only_python_on_path):
    tool, path, _ = installed(http_server, tmp_path, "helm")
    marker = tmp_path / "ran"
    path.write_text(f"#!/bin/sh\ntouch {marker}\necho v3.19.0\n")
    with pytest.raises(tools.ToolError, match="changed since it was verified; refusing to run it"):
        tools.resolve(tool, tmp_path / "cache", "linux", "amd64")
    assert not marker.exists()


def test_a_bare_binary_placed_by_hand_runs_only_if_it_is_the_pinned_file(http_server, tmp_path, only_python_on_path):
    base, _ = http_server
    data = fake_binary("kind", "linux", "amd64")
    tool = load_versions(loopback_versions(tmp_path, base, {
        n: {"linux-amd64": hashlib.sha256(data).hexdigest()} for n in ISSUE_DIGESTS})).tools["kind"]
    path = tools.cached_path(tool, tmp_path / "cache")
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    path.chmod(0o755)
    assert tools.resolve(tool, tmp_path / "cache", "linux", "amd64") == path
    path.unlink()
    (path.parent / "kind.sha256").unlink()
    path.write_bytes(data + b"# edited\n")
    path.chmod(0o755)
    with pytest.raises(tools.ToolError, match="its sha256 is not the pinned one"):
        tools.resolve(tool, tmp_path / "cache", "linux", "amd64")


def test_a_release_archive_placed_by_hand_is_verified_and_used_without_network(tmp_path, only_python_on_path):
    data = release_files("linux", "amd64")["istioctl"]
    versions = load_versions(loopback_versions(tmp_path, "http://127.0.0.1:9", {
        n: {"linux-amd64": hashlib.sha256(data).hexdigest()} for n in ISSUE_DIGESTS}))
    tool = versions.tools["istioctl"]
    placed = tools.downloads_dir(tmp_path / "cache") / "istioctl-1.29.6-linux-amd64.tar.gz"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(data)
    path = tools.resolve(tool, tmp_path / "cache", "linux", "amd64")
    assert path.read_bytes() == fake_binary("istioctl", "linux", "amd64")
    placed.write_bytes(data + b"\0")
    path.unlink()
    with pytest.raises(tools.ToolError, match="checksum mismatch for .*downloads/istioctl-1.29.6-linux-amd64.tar.gz"):
        tools.resolve(tool, tmp_path / "cache", "linux", "amd64")
