"""Write summary.md and index.html next to junit.xml, and append the run to history.jsonl, however the run ended."""

from __future__ import annotations

import json
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from conformance.core.redact import redact
from conformance.reports import history, html, summary
from conformance.reports.model import Run, load_run

# trace.json older than this before the suites started belongs to an earlier bring-up.
TRACE_MAX_AGE = 6 * 3600
# What one run writes into reports/ (cleared when a run starts); history.jsonl and other sessions' files stay.
RUN_OUTPUTS = ("junit.xml", "summary.md", "index.html", "trace.json", "trace-down.json", "diagnostics")


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


def record_stopped(junit: Path, step: str, reason: str, properties: dict[str, str], started: float) -> Run:
    """A run that stopped before its checks (arguments, topology, preflight, bring-up): a JUnit file whose one
    case names the step and the reason, then summary.md, index.html and the history line, verdict ERROR."""
    props = {**properties, "error": f"{step}: {reason}",
             "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))}
    suite = ET.Element("testsuite", name="conformance", tests="1", failures="0", errors="1", skipped="0",
                       time=f"{time.time() - started:.3f}",
                       timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)))
    node = ET.SubElement(suite, "properties")
    for name, value in props.items():
        ET.SubElement(node, "property", name=name, value=redact(str(value)))
    case = ET.SubElement(suite, "testcase", classname="platform", name=step, time="0")
    cprops = ET.SubElement(case, "properties")
    for name, value in (("area", "platform"), ("requirement", "must"), ("outcome", "error")):
        ET.SubElement(cprops, "property", name=name, value=value)
    error = ET.SubElement(case, "error", message=redact(reason))
    error.text = redact(reason)
    root = ET.Element("testsuites", name="conformance")
    root.append(suite)
    junit.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(junit, encoding="utf-8", xml_declaration=True)
    return record(junit, started)


def clear(folder: Path) -> None:
    """Remove what an earlier run wrote, so nothing stale is read as this run's (history.jsonl stays)."""
    for name in RUN_OUTPUTS:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()


def bringup_phases(trace: Path, started: float) -> dict[str, float]:
    """Phase durations of the bring-up that preceded this run (reports/trace.json), if any."""
    try:
        if trace.stat().st_mtime < started - TRACE_MAX_AGE:
            return {}
        return {f"bring-up/{k}": v for k, v in json.loads(trace.read_text()).get("phases", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}
