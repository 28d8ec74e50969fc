"""No declared dependency that nothing uses: pytest-kind-ng is out, and nothing imports it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="Python 3.11+")

ROOT = Path(__file__).resolve().parents[2]


def test_pytest_kind_is_neither_declared_nor_imported():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if d.lower().startswith("pytest-kind")]
    importers = [p for folder in ("conformance", "fixtures", "suites", "tests") for p in (ROOT / folder).rglob("*.py")
                 if re.search(r"^\s*(from|import)\s+pytest_kind\b", p.read_text(), re.M)]
    importers += [p for p in (ROOT / "conftest.py", ROOT / "noxfile.py")
                  if re.search(r"^\s*(from|import)\s+pytest_kind\b", p.read_text(), re.M)]
    assert importers == []


def test_the_design_notes_say_why():
    readme = (ROOT / "docs" / "design.md").read_text()  # the design notes, linked from the README
    assert "No pytest-kind." in readme and "KindCluster" in readme
