"""Real servers for the self-tests, at the stack's pinned versions, fetched or built once per machine, cached by version.

A binary with a published release (`release=` in its entry) is downloaded first and used only when its
checksum holds (tests/real/release.py); otherwise, or when MONITORING_CONFORMANCE_REAL_SOURCE=build, it is built with the ordinary Go client (`go build`) from a small module of
the project's in tests/real/go/<name>/ (go.mod requiring the upstream module, go.sum,
tools.go importing the command) into <cache>/real/<name>-<version>/ (the bring-up's
cache folder; MONITORING_CONFORMANCE_CACHE overrides it). `python -m tests.real build`
builds them all with progress; the self-tests build what is missing at session start.

To add a binary:
1. one `Binary` entry in tests/real/registry.py REGISTRY (name, module, command,
   version_key, and module_version when the Go module is tagged unlike the release);
2. its version: stack/versions.yaml `apps:` when the stack pins it, else tests/real/pins.yaml;
3. tests/real/go/<name>/: tools.go importing the command, then
   `go mod init monitoring-conformance/tests/real/go/<name> && go get <module>@<module version> && go mod tidy`
   (repeat any replace directive the upstream go.mod has); commit go.mod and go.sum;
4. `release=` when the project publishes the binary with a checksum beside it (never without one).
tests/real/test_registry.py then holds go.mod's require to the pinned version.
In a test, `require(name)` gives the path, or skips with how to get it (fails under CI=true).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.real.build import Unavailable, cached_path, ensure, path
from tests.real.registry import REGISTRY, Binary

__all__ = ["REGISTRY", "Binary", "Unavailable", "cached_path", "ensure", "path", "require", "in_ci"]

_unavailable: dict[str, str] = {}  # per process: a build that failed is not retried by every test


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def require(name: str) -> Path:
    """For a self-test: the binary's path; a skip saying how to get it when it cannot be had (a failure in CI)."""
    import pytest

    if name not in _unavailable:
        try:
            return path(name, progress=lambda line: print(line, file=sys.stderr, flush=True))
        except Unavailable as e:
            _unavailable[name] = str(e)
    if in_ci():
        pytest.fail(f"CI=true: {_unavailable[name]}", pytrace=False)
    pytest.skip(_unavailable[name])
