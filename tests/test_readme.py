"""The README's first screen (60 lines) answers what a newcomer asks before reading further (issue 22)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance.core.topology import PARTS

REPO = Path(__file__).resolve().parent.parent
FIRST_SCREEN = "\n".join((REPO / "README.md").read_text().splitlines()[:60])


def suite_markers() -> list[str]:
    """The markers that select checks (pyproject's list, less the ones that annotate checks)."""
    text = (REPO / "pyproject.toml").read_text()
    declared = text.split("\nmarkers = [", 1)[1].split("\n]", 1)[0]  # tomllib is Python 3.11's; the suite runs on 3.10
    names = re.findall(r'^\s*"([a-z_]+)[:(]', declared, flags=re.M)
    return [n for n in names if n not in ("part", "requirement", "hop")]


@pytest.mark.parametrize("words", [
    "./nox -s conformance", "./nox -s tests",                 # the two commands
    "**Needs.**", "**How long.**",                            # what it needs, how long a run takes
    "## Against your own clusters", "provider: existing", "provider: endpoints",
    "**PASS** (0)", "**FAIL** (1)", "**ERROR** (4)", "**INCOMPLETE** (5)",
])
def test_the_first_screen_says_it(words):
    assert words in FIRST_SCREEN


@pytest.mark.parametrize("marker", suite_markers())
def test_every_marker_is_on_the_first_screen(marker):
    assert f"`{marker}`" in FIRST_SCREEN


@pytest.mark.parametrize("part", sorted(PARTS))
def test_every_optional_part_is_on_the_first_screen(part):
    assert f"`{part}`" in FIRST_SCREEN


@pytest.mark.parametrize("option", ["--topology", "--read-only", "--with", "--profile", "--strict", "--timeout-scale",
                                    "--pins", "--keep", "--preload", "--offline", "--cache-dir", "--markers"])
def test_every_option_is_on_the_first_screen(option):
    assert f"`{option}" in FIRST_SCREEN
