"""The tool cache against a loopback HTTP server: verified downloads only, never a partial or mismatched file."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import replace

import pytest

from conformance.provision import tools
from conformance.core.versions import Tool

BINARY = b"#!/bin/sh\necho 'kind v0.31.0 go1.25.5 linux/amd64'\n"


def tool(base: str, sha: str | None, member: str = "") -> Tool:
    return Tool(name="kind", version="v0.31.0", version_args=("version",),
                url=base + "/dl/{version}/kind-{os}-{arch}" + (".tar.gz" if member else ""),
                sha256={"linux-amd64": sha}, sha256_url=base + "/dl/{version}/kind-{os}-{arch}.sha256sum",
                archive_member=member)


@pytest.fixture
def no_path_tools(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))


def test_verified_download_lands_executable_in_the_cache(http_server, tmp_path, no_path_tools):
    base, routes = http_server
    routes["/dl/v0.31.0/kind-linux-amd64"] = (200, BINARY, None)
    path = tools.resolve(tool(base, hashlib.sha256(BINARY).hexdigest()), tmp_path / "cache", "linux", "amd64")
    assert path == tmp_path / "cache" / "tools" / "kind-v0.31.0" / "kind"
    assert path.read_bytes() == BINARY and path.stat().st_mode & 0o111
    # The second resolve uses the cache: the server no longer serves the file.
    routes.clear()
    assert tools.resolve(tool(base, hashlib.sha256(BINARY).hexdigest()), tmp_path / "cache", "linux", "amd64") == path


def test_checksum_mismatch_is_refused_and_nothing_is_kept(http_server, tmp_path, no_path_tools):
    base, routes = http_server
    routes["/dl/v0.31.0/kind-linux-amd64"] = (200, b"tampered", None)
    with pytest.raises(tools.ToolError, match="checksum mismatch") as e:
        tools.resolve(tool(base, hashlib.sha256(BINARY).hexdigest()), tmp_path / "cache", "linux", "amd64")
    assert "provide it by hand" in str(e.value)
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_partial_download_is_not_used(http_server, tmp_path, no_path_tools):
    base, routes = http_server
    # The server promises more bytes than it sends, then closes: a cut connection.
    routes["/dl/v0.31.0/kind-linux-amd64"] = (200, BINARY[:10], len(BINARY))
    with pytest.raises(tools.ToolError, match="cannot download"):
        tools.resolve(tool(base, hashlib.sha256(BINARY).hexdigest()), tmp_path / "cache", "linux", "amd64")
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_no_network_names_tool_url_and_the_manual_way(tmp_path, no_path_tools):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed
    with pytest.raises(tools.ToolError) as e:
        tools.resolve(tool(closed, "0" * 64), tmp_path / "cache", "linux", "amd64")
    message = str(e.value)
    assert message.startswith("kind v0.31.0: cannot download")
    assert f"{closed}/dl/v0.31.0/kind-linux-amd64" in message
    assert "install kind v0.31.0 on PATH, or put" in message and "cache/downloads/kind-linux-amd64" in message


def test_missing_pinned_checksum_refuses_to_download(http_server, tmp_path, no_path_tools):
    base, routes = http_server
    routes["/dl/v0.31.0/kind-linux-amd64"] = (200, BINARY, None)
    with pytest.raises(tools.ToolError, match="no pinned sha256 for linux-amd64") as e:
        tools.resolve(tool(base, None), tmp_path / "cache", "linux", "amd64")
    assert "kind-linux-amd64.sha256sum" in str(e.value), "says where the digest is published"
    assert not (tmp_path / "cache" / "tools" / "kind-v0.31.0" / "kind").exists()


def test_archive_member_is_extracted_after_the_archive_is_verified(http_server, tmp_path, no_path_tools):
    base, routes = http_server
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("linux-amd64/kind")
        info.size = len(BINARY)
        tar.addfile(info, io.BytesIO(BINARY))
    archive = buf.getvalue()
    routes["/dl/v0.31.0/kind-linux-amd64.tar.gz"] = (200, archive, None)
    t = tool(base, hashlib.sha256(archive).hexdigest(), member="{os}-{arch}/kind")
    path = tools.resolve(t, tmp_path / "cache", "linux", "amd64")
    assert path.read_bytes() == BINARY
    # The binary and the sha256 it was verified with; no archive or .part left behind.
    assert sorted(p.name for p in path.parent.iterdir()) == ["kind", "kind.sha256"]


def test_a_tool_on_path_at_the_pinned_version_is_used_without_download(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kind").write_bytes(BINARY)
    (bin_dir / "kind").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert tools.resolve(tool("http://127.0.0.1:9", None), tmp_path / "cache", "linux", "amd64") == bin_dir / "kind"


def test_a_tool_on_path_at_another_version_is_not_used(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kind").write_text("#!/bin/sh\necho 'kind v0.17.0 go1.19 linux/amd64'\n")
    (bin_dir / "kind").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    # pytest-kind's default kind v0.17.0 writes kubeadm v1beta3, refused by newer Kubernetes (kr8s PR #769).
    with pytest.raises(tools.ToolError, match="no pinned sha256"):
        tools.resolve(tool("http://127.0.0.1:9", None), tmp_path / "cache", "linux", "amd64")


@pytest.mark.parametrize("output,version,expected", [
    ("kind v0.31.0 go1.25.5 linux/amd64", "v0.31.0", True),
    ("Client Version: v1.35.0\nKustomize Version: v5.7.1", "v1.35.0", True),
    ("v3.19.0+g3d8990f", "v3.19.0", True),
    ("client version: 1.29.6", "1.29.6", True),
    # A patch release must not pass for the pin (1.29.60 is not 1.29.6).
    ("client version: 1.29.60", "1.29.6", False),
    ("kind v0.310.0", "v0.31.0", False),
])
def test_version_output_matching(output, version, expected):
    assert tools._mentions_version(output, version) is expected


def test_the_pinned_tools_name_the_issue_s_four_tools():
    from conformance.core.versions import load_versions
    pinned = load_versions().tools
    assert sorted(pinned) == ["helm", "istioctl", "kind", "kubectl"]
    assert replace(pinned["kind"], sha256={}).url_for("darwin", "arm64").endswith("/v0.31.0/kind-darwin-arm64")
