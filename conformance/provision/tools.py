"""kind, kubectl, helm, istioctl: from PATH at the pinned version, else a verified download in the cache."""

from __future__ import annotations

import hashlib
import http.client
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from conformance.core.versions import Tool

# The cache the issue names; --cache-dir or MONITORING_CONFORMANCE_CACHE override it.
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "monitoring-conformance"
# A version check of a tool on PATH must not hang the run.
VERSION_TIMEOUT = 10.0
DOWNLOAD_TIMEOUT = 120.0


class ToolError(Exception):
    """A tool cannot be provided; the message names the tool, the URL and the manual way."""


def host_platform() -> tuple[str, str]:
    """("linux"|"darwin", "amd64"|"arm64") of this machine."""
    os_name = platform.system().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), platform.machine().lower())
    return os_name, arch


def cached_path(tool: Tool, cache_dir: Path) -> Path:
    """Where the verified binary of this tool version lives in the cache."""
    return cache_dir / "tools" / f"{tool.name}-{tool.version}" / tool.name


def downloads_dir(cache_dir: Path) -> Path:
    """Where a user may put release files by hand (air-gapped machines); they are verified like downloads."""
    return cache_dir / "downloads"


def manual_hint(tool: Tool, cache_dir: Path, os_name: str, arch: str) -> str:
    """How a user provides the tool by hand."""
    url = tool.url_for(os_name, arch)
    return (f"provide it by hand: install {tool.name} {tool.version} on PATH, or put {url} "
            f"at {downloads_dir(cache_dir) / url.rsplit('/', 1)[-1]} (checked like a download)")


def resolve(tool: Tool, cache_dir: Path, os_name: str | None = None, arch: str | None = None,
            say: Callable[[str], None] | None = None, offline: bool = False) -> Path:
    """The path of a binary of the pinned version; downloads and verifies it when needed.

    Nothing from the cache runs unless its bytes were checked: against the sha256
    recorded when it was verified, or, for a bare binary placed by hand, the pinned one.
    """
    if os_name is None or arch is None:
        os_name, arch = host_platform()
    on_path = shutil.which(tool.name)
    if on_path and reports_version(Path(on_path), tool):
        return Path(on_path)
    cached = cached_path(tool, cache_dir)
    if cached.is_file():
        _check_cached(tool, cached, cache_dir, os_name, arch)
        if reports_version(cached, tool):
            return cached
        raise ToolError(f"{tool.name}: {cached} does not report version {tool.version}; delete it; "
                        + manual_hint(tool, cache_dir, os_name, arch))
    by_hand = downloads_dir(cache_dir) / tool.url_for(os_name, arch).rsplit("/", 1)[-1]
    if offline and not by_hand.is_file():
        raise ToolError(f"{tool.name} {tool.version} is neither on PATH nor in the cache and --offline downloads "
                        "nothing; " + manual_hint(tool, cache_dir, os_name, arch))
    return download(tool, cache_dir, os_name, arch, tool.sha256.get(f"{os_name}-{arch}"), say=say)


def _record(path: Path) -> Path:
    return path.parent / (path.name + ".sha256")


def _check_cached(tool: Tool, cached: Path, cache_dir: Path, os_name: str, arch: str) -> None:
    digest = sha256_of(cached)
    recorded = _record(cached).read_text().strip() if _record(cached).is_file() else None
    if recorded == digest:
        return
    pinned = (tool.sha256.get(f"{os_name}-{arch}") or "").lower()
    if recorded is None and not tool.archive_member and digest == pinned:
        _record(cached).write_text(digest + "\n")  # a bare binary placed by hand: the release file itself
        return
    why = ("changed since it was verified" if recorded else
           "was not installed by this tool and its sha256 is not the pinned one" if not tool.archive_member else
           "was not installed by this tool, and only the release archive has a checksum")
    raise ToolError(f"{tool.name} {tool.version}: {cached} {why}; refusing to run it; delete it, or "
                    + manual_hint(tool, cache_dir, os_name, arch))


def reports_version(path: Path, tool: Tool) -> bool:
    """True when `<path> <version_args>` prints the pinned version."""
    try:
        out = subprocess.run([str(path), *tool.version_args], capture_output=True, text=True, timeout=VERSION_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return _mentions_version(out.stdout + out.stderr, tool.version)


def _mentions_version(text: str, version: str) -> bool:
    bare = version.lstrip("v")
    for token in text.replace(",", " ").replace('"', " ").split():
        token = token.lstrip("v").split("+")[0]
        if token == bare:
            return True
    return False


def published_digest(tool: Tool, cache_dir: Path, os_name: str, arch: str) -> str:
    """The sha256 the release publishes next to the file (its .sha256 / .sha256sum)."""
    url = tool.sha256_url_for(os_name, arch)
    unpinned = f"{tool.name} {tool.version}: no pinned sha256 for {os_name}-{arch} in stack/versions.yaml"
    if not tool.sha256_url:
        raise ToolError(f"{unpinned}, and no published checksum to check the download against; "
                        + manual_hint(tool, cache_dir, os_name, arch))
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as r:
            text = r.read(4096).decode("ascii", "replace")
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as e:
        raise ToolError(f"{unpinned}, and its published checksum {url} cannot be fetched "
                        f"({getattr(e, 'reason', e)}); " + manual_hint(tool, cache_dir, os_name, arch)) from None
    m = _HEX64.search(text)
    if not m:
        raise ToolError(f"{unpinned}, and {url} holds no sha256; " + manual_hint(tool, cache_dir, os_name, arch))
    return m.group(0).lower()


_HEX64 = re.compile(r"\b[0-9a-fA-F]{64}\b")


def download(tool: Tool, cache_dir: Path, os_name: str, arch: str, expected: str | None,
             say: Callable[[str], None] | None = None) -> Path:
    """Fetch (or take from the downloads folder), verify the sha256, unpack, and move into place atomically."""
    url = tool.url_for(os_name, arch)
    against = "pinned"
    if not expected:
        expected = published_digest(tool, cache_dir, os_name, arch)
        against = f"published at {tool.sha256_url_for(os_name, arch)}"
        (say or _stderr)(f"{tool.name} {tool.version} {os_name}-{arch}: no pinned sha256, so verified against the "
                         f"checksum the release publishes next to it; to pin it, add `{os_name}-{arch}: {expected}` "
                         f"under tools.{tool.name}.sha256 in stack/versions.yaml")
    dest = cached_path(tool, cache_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    by_hand = downloads_dir(cache_dir) / url.rsplit("/", 1)[-1]
    part = dest.parent / (dest.name + ".part")
    try:
        if by_hand.is_file():
            shutil.copyfile(by_hand, part)
            url = str(by_hand)
        else:
            try:
                fetch_to(url, part)
            except FetchError as e:
                raise ToolError(f"{tool.name} {tool.version}: cannot download {url} ({e}); "
                                + manual_hint(tool, cache_dir, os_name, arch)) from None
        digest = sha256_of(part)
        if digest != expected.lower():
            raise ToolError(f"{tool.name} {tool.version}: checksum mismatch for {url}: got sha256 {digest}, "
                            f"{against} {expected}; refusing it; " + manual_hint(tool, cache_dir, os_name, arch))
        if tool.archive_member:
            _extract(part, tool.member_for(os_name, arch), dest, tool, url)
            part.unlink()
        else:
            part.chmod(0o755)
            part.replace(dest)
        _record(dest).write_text(sha256_of(dest) + "\n")
    finally:
        # A partial or refused download is never left where it could be used.
        part.unlink(missing_ok=True)
    return dest


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


class FetchError(Exception):
    """A download that did not arrive whole; the message says why."""


def fetch_to(url: str, part: Path, timeout: float = DOWNLOAD_TIMEOUT) -> None:
    """Download url into part; FetchError when it cannot be had or arrives cut short."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, part.open("wb") as f:
            expected_len = r.headers.get("Content-Length")
            shutil.copyfileobj(r, f)
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as e:
        raise FetchError(getattr(e, "reason", e)) from None
    # A connection cut short is a partial file, whatever its checksum would say.
    if expected_len is not None and part.stat().st_size != int(expected_len):
        raise FetchError(f"incomplete: {part.stat().st_size} of {expected_len} bytes")


def sha256_of(path: Path) -> str:
    """The file's sha256, hex."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _extract(archive: Path, member: str, dest: Path, tool: Tool, url: str) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            f = tar.extractfile(member)
            if f is None:
                raise KeyError(member)
            data = f.read()
    except (tarfile.TarError, KeyError, OSError) as e:
        raise ToolError(f"{tool.name}: {url} has no usable {member} ({e})") from None
    tmp = dest.parent / (dest.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(dest)


def best_effort(tools: dict[str, Tool], cache_dir: Path) -> dict[str, Path]:
    """Paths for diagnostics and `down`: the cached binary when it is the one verified, else the name on PATH;
    never downloads."""
    return {name: (cached_path(t, cache_dir) if _verified(cached_path(t, cache_dir)) else Path(name))
            for name, t in tools.items()}


def _verified(path: Path) -> bool:
    return path.is_file() and _record(path).is_file() and _record(path).read_text().strip() == sha256_of(path)


def resolve_all(tools: dict[str, Tool], cache_dir: Path, say: Callable[[str], None] | None = None,
                offline: bool = False) -> dict[str, Path]:
    """Every tool's path; the first tool that cannot be provided raises ToolError (offline: without downloading)."""
    return {name: resolve(tool, cache_dir, say=say, offline=offline) for name, tool in tools.items()}

