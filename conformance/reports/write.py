"""Write summary.md and index.html next to junit.xml, and append the run to history.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.reports import history, html, summary
from conformance.reports.model import Run, load_run

# trace.json older than this before the suites started belongs to an earlier bring-up.
TRACE_MAX_AGE = 6 * 3600


def render(junit: Path) -> Run:
    """(Re)write summary.md and index.html from junit.xml; returns the run."""
    run = load_run(junit)
    folder = junit.parent
    (folder / "summary.md").write_text(summary.render(run))
    (folder / "index.html").write_text(html.render(run))
    return run


def record(junit: Path, started: float) -> Run:
    """render() plus one history line with the bring-up's phase durations when they belong to this run."""
    run = render(junit)
    history.append(junit.parent / "history.jsonl", history.entry(run, bringup_phases(junit.parent / "trace.json", started)))
    return run


def bringup_phases(trace: Path, started: float) -> dict[str, float]:
    """Phase durations of the bring-up that preceded this run (reports/trace.json), if any."""
    try:
        if trace.stat().st_mtime < started - TRACE_MAX_AGE:
            return {}
        return {f"bring-up/{k}": v for k, v in json.loads(trace.read_text()).get("phases", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}

