"""reports/history.jsonl: one line per run, and the table `nox -s report` prints from it."""

from __future__ import annotations

import json
import statistics
from datetime import datetime, timezone
from pathlib import Path

from conformance.reports.model import Run

# A latency is a regression when it is this many times the median of the previous runs ...
REGRESSION_FACTOR = 2.0
# ... and at least this many seconds above it (sub-second noise is not news).
REGRESSION_MIN_SECONDS = 0.5
COLUMNS = {"log_propagation_seconds": "log prop. s", "remote_write_sample_age_seconds": "sample age s"}


def entry(run: Run, phases: dict[str, float] | None = None, now: datetime | None = None) -> dict:
    """What one run contributes to the history."""
    now = now or datetime.now(timezone.utc)
    latencies: dict[str, float] = {}
    for c in run.checks:
        for name, v in c.latencies.items():
            latencies[f"{c.key}|{name}"] = v
    return {
        "time": now.isoformat(timespec="seconds"),
        "verdict": run.verdict,
        **({"error": run.error} if run.error else {}),
        "topology": run.properties.get("topology", ""),
        "selection": selection(run.properties),
        "versions": {k: v for k, v in run.properties.items() if k.startswith(("pin.", "tool."))},
        "inventory": {k.removeprefix("inventory."): v for k, v in run.properties.items() if k.startswith("inventory.")},
        "counts": {"passed": run.count("passed"), "failing": run.count("failing"), "skipped": run.count("skipped"),
                   "not_applicable": run.count("not_applicable"), "blocked": run.count("blocked")},
        "checks": {c.key: c.outcome for c in run.checks},
        "latencies": latencies,
        "phases": {**(phases or {}), "suites": round(run.seconds, 3)},
    }


def selection(properties: dict[str, str]) -> dict[str, str]:
    """What the run selected: -m, -k, the optional parts and the stack profile (empty values left out)."""
    chosen = {"markers": properties.get("selection.markers", ""), "keywords": properties.get("selection.keywords", ""),
              "parts": ",".join(k.removeprefix("part.") for k in properties if k.startswith("part.")),
              "profile": properties.get("profile", "")}
    return {k: v for k, v in chosen.items() if v}


def append(path: Path, line: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(line, sort_keys=True) + "\n")


def read(path: Path) -> list[dict]:
    """Every run in the file, oldest first; a damaged line is skipped, not fatal."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def worst(line: dict, measurement: str) -> float | None:
    """The largest value of one measurement across the run's checks."""
    values = [v for k, v in line.get("latencies", {}).items() if k.endswith(f"|{measurement}")]
    return max(values) if values else None


def regressions(previous: list[dict], line: dict) -> list[str]:
    """Latencies far above the median of earlier runs, as words."""
    notes = []
    for measurement in sorted({k.split("|", 1)[1] for k in line.get("latencies", {})}):
        now = worst(line, measurement)
        before = [v for v in (worst(p, measurement) for p in previous) if v is not None]
        if now is None or not before:
            continue
        median = statistics.median(before)
        if now > REGRESSION_FACTOR * median and now - median >= REGRESSION_MIN_SECONDS:
            notes.append(f"↑ {measurement.removesuffix('_seconds').replace('_', ' ')} {now:.2f} s (median {median:.2f} s)")
    return notes


def table(lines: list[dict], last: int = 10) -> str:
    """The last runs as a fixed-width table, newest last, with regressions called out."""
    header = ["time (UTC)", "verdict", "pass", "fail", "skip", *COLUMNS.values(), "suites s", "topology", "selection",
              "notes"]
    rows = []
    for i, line in enumerate(lines):
        counts = line.get("counts", {})
        cells = [line.get("time", "")[:19].replace("T", " "), line.get("verdict", "?"),
                 str(counts.get("passed", "")), str(counts.get("failing", "")), str(counts.get("skipped", ""))]
        for measurement in COLUMNS:
            v = worst(line, measurement)
            cells.append("" if v is None else f"{v:.2f}")
        cells.append(f"{line.get('phases', {}).get('suites', 0):.1f}")
        cells.append(Path(line.get("topology", "")).name)
        cells.append(" ".join(f"{k}={v}" for k, v in line.get("selection", {}).items()))
        failing = [k for k, o in line.get("checks", {}).items() if o in ("failed", "timed_out", "precondition", "error")]
        notes = ([line["error"][:80]] if line.get("error") else []) + regressions(lines[max(0, i - 5):i], line) + (
            [f"failing: {', '.join(failing[:2])}" + (" …" if len(failing) > 2 else "")] if failing else [])
        cells.append("; ".join(notes))
        rows.append(cells)
    rows = rows[-last:]
    if not rows:
        return "no runs recorded yet\n"
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)]) + "\n"
