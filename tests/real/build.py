"""Build a registered binary once per machine with the ordinary Go client, into the bring-up's cache."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from conformance.provision.tools import DEFAULT_CACHE
from tests.real.registry import GO_DIR, REGISTRY, Binary
from tests.real.release import SOURCE_ENV, NoRelease, downloads_allowed
from tests.real.release import fetch as fetch_release

Progress = Callable[[str], None]
# How often a running build says it is still going.
PROGRESS_EVERY = 20.0
# Longest a build may take before it is abandoned (a cold Prometheus build is minutes on 2 cores).
BUILD_TIMEOUT = 3600.0


class Unavailable(Exception):
    """The binary is not in the cache and cannot be built here; the message says how to get it."""


def cache_root() -> Path:
    """<cache>/real: the bring-up's cache folder (MONITORING_CONFORMANCE_CACHE overrides it, as for `up`)."""
    return Path(os.environ.get("MONITORING_CONFORMANCE_CACHE", DEFAULT_CACHE)) / "real"


def cached_path(b: Binary) -> Path:
    return cache_root() / f"{b.name}-{b.version}" / b.name


def how_to_get(b: Binary) -> str:
    return (f"get it with `python -m tests.real build {b.name}` (its release download, else a build with Go from "
            f"the Go module proxy), "
            f"or put a {b.name} {b.version} binary at {cached_path(b)}")


def source_record(b: Binary) -> Path:
    """Beside the cached binary: one line saying how it came (downloaded from where, or built)."""
    return cached_path(b).with_name(".source")


def ensure(b: Binary, progress: Progress = print) -> Path:
    """The cached binary; when missing, its checked release download, else a build (one at a time, across processes)."""
    dest = cached_path(b)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be fetching or building it right now
        if not dest.is_file() and not _downloaded(b, dest, progress):
            go = shutil.which("go")
            if go is None:
                raise Unavailable(f"{b.name} {b.version} is not built and `go` is not on PATH; {how_to_get(b)}")
            _build(go, b, dest, progress)
            source_record(b).write_text(f"built with go from {b.module} {b.module_version(b.version)}\n")
    return dest


def _downloaded(b: Binary, dest: Path, progress: Progress) -> bool:
    """True when the release file came and its checksum held; otherwise says why the build comes instead."""
    release = b.release()
    if release is None:
        return False
    if not downloads_allowed():
        progress(f"{b.name} {b.version}: {SOURCE_ENV}=build, so built rather than downloaded")
        return False
    started = time.monotonic()
    try:
        how = fetch_release(release, b.version, dest)
    except NoRelease as e:
        progress(f"{b.name} {b.version}: no release download ({e}); building it instead")
        return False
    source_record(b).write_text(how + "\n")
    progress(f"{b.name} {b.version}: {how} ({time.monotonic() - started:.0f} s): {dest}")
    return True


def _vendored(go: str, b: Binary, work: Path) -> list[str]:
    """For embed_placeholders: the module folder copied to work/, vendored, and an overlay of the stand-ins.

    `go mod vendor -e` copes with the embed it cannot resolve yet; `go build -overlay` may not replace files in
    the module cache, but it may in vendor/; nothing in the
    project's tree changes and work/ is removed after the build. Returns the extra `go build` arguments.
    """
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(b.folder, work)
    subprocess.run([go, "mod", "vendor", "-e"], cwd=work, check=True, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    overlay = {"Replace": {str(work / "vendor" / b.module / inside): str(GO_DIR.parent / ours)
                           for inside, ours in b.embed_placeholders.items()}}
    (work / "overlay.json").write_text(json.dumps(overlay))
    return ["-mod=vendor", f"-overlay={work / 'overlay.json'}"]


def _build(go: str, b: Binary, dest: Path, progress: Progress) -> None:
    tmp = dest.with_name(f".{b.name}.partial")
    cwd, work = b.folder, dest.with_name(f".{b.name}.src")
    cmd = [go, "build", "-v", "-o", str(tmp)]
    if b.embed_placeholders:
        try:
            cmd += _vendored(go, b, work)
        except (OSError, subprocess.SubprocessError) as e:
            shutil.rmtree(work, ignore_errors=True)
            why = getattr(e, "stderr", None) or e
            raise Unavailable(f"{b.name} {b.version} could not be vendored ({str(why).strip()[-300:]}); {how_to_get(b)}") from None
        cwd = work
    if flags := b.ldflags(b.version):
        cmd.append("-ldflags=" + " ".join(flags))
    cmd.append(b.command)
    progress(f"building {b.name} {b.version} (Go module {b.module} {b.module_version(b.version)}) "
             f"from {b.folder.relative_to(b.folder.parents[3])}; a cold build takes minutes, once per machine")
    try:
        _run_build(cmd, cwd, b, tmp, dest, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_build(cmd: list[str], cwd: Path, b: Binary, tmp: Path, dest: Path, progress: Progress) -> None:
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # -v: a line per package
    reader.start()
    while proc.poll() is None:
        try:
            proc.wait(PROGRESS_EVERY)
        except subprocess.TimeoutExpired:
            elapsed = time.monotonic() - started
            if elapsed > BUILD_TIMEOUT:
                proc.kill()
                proc.wait()
                break
            downloads = sum(line.startswith("go: downloading") for line in lines)
            last = lines[-1].strip() if lines else "resolving modules"
            progress(f"  {b.name} {b.version}: {elapsed:.0f} s, {len(lines) - downloads} packages compiled, "
                     f"{downloads} modules downloaded (last: {last})")
    reader.join(10)
    elapsed = time.monotonic() - started
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        tail = " | ".join(line.strip() for line in lines[-5:] if not line.startswith("go: downloading"))
        why = f"timed out after {elapsed:.0f} s" if proc.returncode is None or proc.returncode < 0 else f"go build exited {proc.returncode}: {tail}"
        raise Unavailable(f"{b.name} {b.version} could not be built ({why}); {how_to_get(b)}")
    os.replace(tmp, dest)
    progress(f"built {b.name} {b.version} in {elapsed:.0f} s: {dest}")


def path(name: str, progress: Progress = print) -> Path:
    """The binary for REGISTRY[name], built when missing; Unavailable when it cannot be had."""
    return ensure(REGISTRY[name], progress)
