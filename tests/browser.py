"""Headless Debian chromium: the DOM and a screenshot of a local HTML file, as a person's browser shows it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

INSTALL_HINT = "chromium is not on PATH (Debian/Ubuntu: apt-get install -y chromium); .ci/run installs it"
# The flags that work in containers without a GPU, sandbox or network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=90)


def dump_dom(page: Path, folder: Path, *args: str) -> str:
    """The DOM after layout (and after the page's own scripts), serialized (--dump-dom); args add chromium flags."""
    result = _run(page, folder / "profile-dom", *args, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def screenshot(page: Path, folder: Path, size: str = "1200,1800") -> Path:
    """A PNG of the page at the given window size."""
    png = folder / "screenshot.png"
    result = _run(page, folder / "profile-shot", f"--screenshot={png}", f"--window-size={size}", "--hide-scrollbars")
    assert png.is_file(), result.stderr[-2000:]
    return png
