"""The layout is the architecture: each layer of conformance/ imports only the layers below it (issue 21)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "conformance"

# Lowest first: a module may import its own layer and those before it, never one after.
LAYERS = ["core", "clients", "probes", "provision", "reports", "plugins", "entry"]
# The entries at conformance/'s top: `python -m conformance` (cli, the whole run) and the upgrade run.
ENTRY = {"__init__", "__main__", "cli", "upgrade"}


def layer_of(module: str) -> str:
    """The layer of a dotted module under conformance: `conformance.probes.logs.canary` is in probes."""
    first = module.split(".")[1] if "." in module else "__init__"
    return "entry" if first in ENTRY else first


def dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every conformance module the file imports, wherever the import statement is (lazy ones included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "conformance":
                found |= {f"conformance.{a.name}" for a in node.names}
            elif node.module.startswith("conformance."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("conformance.")}
    return found


def upward_imports(path: Path) -> list[str]:
    """Each import of `path` that runs back up a layer, naming both layers."""
    own = LAYERS.index(layer_of(dotted(path)))
    return sorted(f"{dotted(path)} ({LAYERS[own]}) imports {target} ({layer_of(target)})"
                  for target in imported(path) if LAYERS.index(layer_of(target)) > own)


def test_every_module_is_in_a_layer() -> None:
    loose = sorted(p.name for p in PACKAGE.iterdir()
                   if p.stem not in ENTRY and p.name not in LAYERS and p.name != "__pycache__")
    assert not loose, f"conformance/ holds only the layer packages {LAYERS[:-1]} and the entries: not {loose}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_back_up_a_layer(path: Path) -> None:
    assert not upward_imports(path)


def test_an_upward_import_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The failing path: a core module importing a probe is reported with both layers."""
    bad = tmp_path / "conformance" / "core" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("def lazy():\n    from conformance.probes.logs.canary import Canary\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "conformance")
    assert upward_imports(bad) == ["conformance.core.bad (core) imports conformance.probes.logs.canary (probes)"]
