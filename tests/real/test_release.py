"""A real server's release download: checked against its published checksum, else the build comes, saying why."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from conformance.provision.tools import host_platform
from tests.fakes.server import FakeServer, Response
from tests.real import build
from tests.real.registry import REGISTRY, Binary
from tests.real.release import Release, published_digest

OS, ARCH = host_platform()
BINARY = b"#!/bin/sh\necho prometheus, version 3.14.0\n"


def tarball(member: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def releases(tmp_path, monkeypatch):
    """A release host serving prometheus-3.14.0 as promu publishes it, and a Go that must not be needed."""
    server = FakeServer().start()
    name = f"prometheus-3.14.0.{OS}-{ARCH}"
    archive = tarball(f"{name}/prometheus", BINARY)
    files = {f"/{name}.tar.gz": archive,
             "/sha256sums.txt": (f"{'0' * 64}  prometheus-3.14.0.other-arch.tar.gz\n"
                                 f"{hashlib.sha256(archive).hexdigest()}  {name}.tar.gz\n").encode()}
    server.route("GET", r"/.*", lambda request: Response(200, files[request.path]) if request.path in files
                 else Response(404, "Not Found"))
    monkeypatch.setenv("MONITORING_CONFORMANCE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MONITORING_CONFORMANCE_REAL_SOURCE", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")  # no go: a build would fail loudly
    yield server, files
    server.stop()


def promu_like(url: str) -> Binary:
    """The registry's Prometheus entry with its release host moved to url."""
    b = REGISTRY["prometheus"]
    return Binary(b.name, b.module, b.command, b.version_key, b.module_version, b.ldflags, release=lambda: Release(
        url=url + "/prometheus-{bare}.{os}-{arch}.tar.gz", sha256_url=url + "/sha256sums.txt",
        member="prometheus-{bare}.{os}-{arch}/prometheus"))


def test_a_published_release_is_downloaded_checked_and_says_so(releases):
    server, _ = releases
    lines: list[str] = []
    b = promu_like(server.url)
    got = build.ensure(b, progress=lines.append)
    assert got.read_bytes() == BINARY and got.stat().st_mode & 0o111
    assert len(lines) == 1 and lines[0].startswith(
        f"prometheus v3.14.0: downloaded {server.url}/prometheus-3.14.0.{OS}-{ARCH}.tar.gz, sha256 checked against "
        f"{server.url}/sha256sums.txt (")
    assert build.source_record(b).read_text().startswith("downloaded ")
    assert not [p for p in got.parent.iterdir() if p.name.startswith(".release-")]  # nothing half-fetched left


@pytest.mark.parametrize("spoil, why", [
    ("archive", "checksum mismatch for {url}/prometheus-3.14.0.{os}-{arch}.tar.gz: sha256 "),
    ("sums", "{url}/sha256sums.txt has no sha256 for prometheus-3.14.0.{os}-{arch}.tar.gz"),
    ("host", "cannot download {url}/sha256sums.txt ("),
])
def test_a_release_that_cannot_be_checked_is_never_used_and_the_build_comes(releases, spoil, why):
    server, files = releases
    name = f"/prometheus-3.14.0.{OS}-{ARCH}.tar.gz"
    url = server.url
    if spoil == "archive":
        files[name] = files[name] + b"tampered"
    elif spoil == "sums":
        files["/sha256sums.txt"] = b"not a checksum listing\n"
    else:
        server.stop()
    lines: list[str] = []
    b = promu_like(url)
    with pytest.raises(build.Unavailable, match="`go` is not on PATH"):
        build.ensure(b, progress=lines.append)
    assert lines[0].startswith("prometheus v3.14.0: no release download (" + why.format(url=url, os=OS, arch=ARCH))
    assert lines[0].endswith("); building it instead")
    assert not build.cached_path(b).exists() and not build.source_record(b).exists()


@pytest.mark.parametrize("text, digest", [
    ("a" * 64 + "\n", "a" * 64),  # dl.k8s.io's kube-apiserver.sha256: the digest alone
    ("b" * 64 + "  x.tar.gz\n" + "c" * 64 + "  y.tar.gz\n", "c" * 64),  # promu's sha256sums.txt
    ("d" * 64 + " *y.tar.gz\n", "d" * 64),  # sha256sum's binary-mode marker
    ("b" * 64 + "  x.tar.gz\n", None),  # a listing without the file: never "the first digest"
])
def test_the_published_digest_is_the_files_own(text, digest):
    assert published_digest(text, "y.tar.gz") == digest


def test_each_downloadable_server_names_an_https_release_with_a_checksum():
    for b in REGISTRY.values():
        release = b.release()
        if release is None:
            continue
        assert release.filled(release.url, b.version).startswith("https://"), b.name
        assert release.sha256_url or release.sha256, f"{b.name}: a release without a checksum would be run unchecked"
    assert {name for name, b in REGISTRY.items() if b.release() is None} == {
        "kwok", "kube-state-metrics", "kubernetes-event-exporter", "jaeger"}


def test_kind_comes_with_the_digest_the_bring_up_pins():
    release = REGISTRY["kind"].release()
    assert release.sha256 and all(len(v) == 64 for v in release.sha256.values())
    assert release.filled(release.url, "v0.31.0") == f"https://kind.sigs.k8s.io/dl/v0.31.0/kind-{OS}-{ARCH}"
