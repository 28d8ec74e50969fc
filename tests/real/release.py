"""A real server's published release file, checked against its published checksum: the fast way to a binary.

Where the network allows, a fresh machine downloads the pinned releases in seconds instead of building them
for half an hour (as setup-envtest does for kube-apiserver and etcd). A release file whose checksum cannot be
had is never run; anything that goes wrong here means "build it instead", with the reason.
"""

from __future__ import annotations

import os
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from conformance.provision.tools import FetchError, fetch_to, host_platform, sha256_of

# One try, bounded: a network that drops packets must not hold a self-test run for minutes before the build.
TIMEOUT = 15.0
# MONITORING_CONFORMANCE_REAL_SOURCE=build never downloads (CI here builds: no route to the release hosts).
SOURCE_ENV = "MONITORING_CONFORMANCE_REAL_SOURCE"


class NoRelease(Exception):
    """The release file cannot be had or checked; the message says why (the caller builds instead)."""


@dataclass(frozen=True)
class Release:
    """Where a pinned version's release lives: {version} as pinned, {bare} without "v", {os}, {arch}."""

    url: str  # the archive (.tar.gz) or the bare binary
    sha256_url: str = ""  # a checksum file published beside it: one digest, or "<digest>  <file name>" lines
    member: str = ""  # the binary's path inside a .tar.gz; empty for a bare binary
    sha256: dict[str, str] | None = None  # digests pinned in stack/versions.yaml, "<os>-<arch>" -> hex

    def filled(self, template: str, version: str) -> str:
        os_name, arch = host_platform()
        return template.format(version=version, bare=version.removeprefix("v"), os=os_name, arch=arch)


def downloads_allowed() -> bool:
    return os.environ.get(SOURCE_ENV, "").strip().lower() != "build"


def fetch(release: Release, version: str, dest: Path) -> str:
    """Put the release's binary at dest, checked; returns how it came (for the build log). NoRelease otherwise."""
    url = release.filled(release.url, version)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".release-") as tmp:
        part = Path(tmp) / url.rsplit("/", 1)[-1]
        expected, against = _expected_digest(release, version, url, Path(tmp))
        try:
            fetch_to(url, part, timeout=TIMEOUT)
        except FetchError as e:
            raise NoRelease(f"cannot download {url} ({e})") from None
        digest = sha256_of(part)
        if digest != expected:
            raise NoRelease(f"checksum mismatch for {url}: sha256 {digest}, {against} {expected}")
        binary = _member(part, release.filled(release.member, version), url) if release.member else part
        binary.chmod(0o755)
        binary.replace(dest)
    return f"downloaded {url}, sha256 checked against {against}"


def _expected_digest(release: Release, version: str, url: str, tmp: Path) -> tuple[str, str]:
    """The digest the file must have, and where it came from."""
    os_name, arch = host_platform()
    if pinned := (release.sha256 or {}).get(f"{os_name}-{arch}"):
        return pinned.lower(), "the digest pinned in stack/versions.yaml"
    if not release.sha256_url:
        raise NoRelease(f"{url} has no published checksum to check it against")
    sums_url = release.filled(release.sha256_url, version)
    sums = tmp / "checksums"
    try:
        fetch_to(sums_url, sums, timeout=TIMEOUT)
    except FetchError as e:
        raise NoRelease(f"cannot download {sums_url} ({e})") from None
    digest = published_digest(sums.read_text(errors="replace"), url.rsplit("/", 1)[-1])
    if digest is None:
        raise NoRelease(f"{sums_url} has no sha256 for {url.rsplit('/', 1)[-1]}")
    return digest, sums_url


_LINE = re.compile(r"^([0-9a-fA-F]{64})\s+\*?(\S+)\s*$")


def published_digest(text: str, file_name: str) -> str | None:
    """The digest for file_name in a sha256sum listing, or the only digest of a one-digest file (kubernetes' .sha256)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if (m := _LINE.match(line)) and m.group(2).rsplit("/", 1)[-1] == file_name:
            return m.group(1).lower()
    if len(lines) == 1 and re.fullmatch(r"[0-9a-fA-F]{64}", lines[0]):
        return lines[0].lower()
    return None


def _member(archive: Path, member: str, url: str) -> Path:
    """The binary inside the archive, extracted beside it."""
    out = archive.with_name(member.rsplit("/", 1)[-1] + ".bin")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            f = tar.extractfile(member)
            if f is None:
                raise KeyError(member)
            out.write_bytes(f.read())
    except (tarfile.TarError, KeyError, OSError) as e:
        raise NoRelease(f"{url} has no usable {member} ({e})") from None
    return out
