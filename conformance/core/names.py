"""Names people guess: the older or unhyphenated spellings of a part and of its marker, accepted everywhere.

Standard library only (the reports read it too). A part is hyphenated (`kube-bench`, like `kube-state-metrics`),
its marker the same with underscores (`kube_bench`, like `kube_state_metrics`).
"""

from __future__ import annotations

import re

PART_ALIASES = {"kubebench": "kube-bench"}  # alias -> the part's name (topology parts:, --with, report properties)
MARKER_ALIASES = {"kubebench": "kube_bench"}  # alias -> the marker (-m, a report's area)


def part_name(name: str) -> str:
    """The part a name means: `kubebench` is `kube-bench`; any other name as given."""
    return PART_ALIASES.get(name, name)


def marker_name(name: str) -> str:
    """The marker (and report area) a name means: `kubebench` is `kube_bench`; any other name as given."""
    return MARKER_ALIASES.get(name, name)


def marker_expression(expression: str) -> str:
    """A -m expression with every alias replaced by its marker ("kubebench or logs" -> "kube_bench or logs")."""
    if not expression:
        return expression
    return re.sub(r"[A-Za-z_][\w-]*", lambda m: marker_name(m.group(0)), expression)
