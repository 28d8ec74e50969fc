"""What the self-tests read from ../shared beside the repository: real servers' recordings and upstream dashboards.

A user's clone has no ../shared: a test that needs it skips with one line naming the path (fails under CI=true).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.real import in_ci

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared(*parts: str) -> Path:
    """The path under ../shared; a skip naming it when it is not there (a failure in CI, which must have it)."""
    path = SHARED.joinpath(*parts)
    if path.exists():
        return path
    why = (f"needs {path}: the recordings of real servers and the upstream dashboards the self-tests compare "
           "against, kept beside the repository as ../shared (CI has them)")
    if in_ci():
        pytest.fail(f"CI=true: {why}", pytrace=False)
    pytest.skip(why)
