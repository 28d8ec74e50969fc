"""reports/index.html: one self-contained page (no script, no external asset) a person reads after a run."""

from __future__ import annotations

from html import escape

from conformance.reports import picture
from conformance.reports.model import Run
from conformance.reports.text import (GLYPH, cell_status, check_title, clip, measurement_words, outcome_words,
                                      root_cause_lines, unobserved_lines, verdict_line, when)

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#263238;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.verdict{padding:10px 14px;border-radius:8px;font-size:18px;font-weight:bold;margin:12px 0}
.verdict.FAIL{background:#ffebee;color:#b71c1c}.verdict.PASS{background:#e8f5e9;color:#1b5e20}
.verdict.INCOMPLETE{background:#fff8e1;color:#e65100}.verdict.ERROR{background:#eceff1;color:#263238}
ol.causes,ul.unobserved{margin:4px 0 8px;padding-left:22px;font-size:14px} ol.causes li,ul.unobserved li{margin:3px 0}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #cfd8dc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eceff1} td.failed{background:#ffebee} td.warning{background:#fff8e1} td.skipped,td.not_run{color:#78909c}
.failure{border-left:4px solid #c62828;padding:4px 12px;margin:10px 0;background:#fafafa}
.failure.warning{border-color:#ef8f00} pre{white-space:pre-wrap;font-size:12px;margin:6px 0}
.muted{color:#607d8b;font-size:12px} .legend span{margin-right:14px}
"""


def render(run: Run) -> str:
    body = [
        "<h1>Monitoring stack conformance</h1>",
        f'<div class="muted">{escape(when(run.properties.get("started") or run.timestamp))} · topology '
        f'{escape(run.properties.get("topology", "?"))} · {len(run.checks)} checks in {run.seconds:.0f} s</div>',
        f'<div class="verdict {run.verdict}" id="verdict">{escape(verdict_line(run))}</div>',
        *_first_read(run),
        "<h2>Topology</h2>", picture.render(run), _legend(),
        "<h2>Checks by cluster</h2>", _checks_table(run),
        *_latencies(run),
        *_failures(run),
        "<h2>Run</h2>", _run_properties(run),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Conformance: {escape(run.verdict)}</title><style>{STYLE}</style></head>"
            "<body>\n" + "\n".join(body) + "\n</body></html>\n")


def _first_read(run: Run) -> list[str]:
    """The root causes and why checks were not observed, right under the verdict: read before any scrolling."""
    out = []
    causes = root_cause_lines(run) if run.verdict != "ERROR" else []
    if causes:
        items = "".join(f"<li>{escape(line.split('. ', 1)[1] if line[0].isdigit() else line)}</li>" for line in causes)
        out += ['<h2>Root causes</h2>', f'<ol class="causes" id="root-causes">{items}</ol>']
    unobserved = unobserved_lines(run)
    if unobserved:
        items = "".join(f"<li>{escape(line.removeprefix('- '))}</li>" for line in unobserved)
        out += ['<h2>Not observed</h2>', f'<ul class="unobserved" id="not-observed">{items}</ul>']
    return out


def _legend() -> str:
    items = [("passed", "every check passed"), ("failed", "a must check found it broken"),
             ("warning", "a should check found it broken"),
             ("skipped", "not tested: not run (a hop it needs is broken) or not observed"),
             ("unchecked", "no check of it in this run")]
    spans = "".join(f'<span style="color:{picture.COLOUR[s]}">■ {escape(w)}</span>' for s, w in items)
    return f'<div class="legend muted">{spans}</div>'


def _checks_table(run: Run) -> str:
    clusters = run.clusters
    rows: dict[str, dict[str, str]] = {}
    for c in run.checks:
        state = cell_status(c)
        shown = ", ".join(f"{measurement_words(k)} {v}" for k, v in c.measurements.items())
        text = f"{GLYPH[state]} {outcome_words(c)}" + (f"<br><span class=\"muted\">{escape(shown)}</span>" if shown else "")
        rows.setdefault(check_title(c), {})[c.cluster] = f'<td class="{state}" title="{escape(c.message)}">{text}</td>'
    head = "<tr><th>check</th>" + "".join(f"<th>{escape(n)}</th>" for n in clusters) + "</tr>"
    body = "".join(f"<tr><td>{escape(t)}</td>" + "".join(cells.get(n, "<td></td>") for n in clusters) + "</tr>"
                   for t, cells in rows.items())
    return f'<table id="checks">{head}{body}</table>'


def _latencies(run: Run) -> list[str]:
    rows = [(c, name, v) for c in run.checks for name, v in c.latencies.items()]
    if not rows:
        return []
    body = "".join(f"<tr><td>{escape(measurement_words(n))}</td><td>{escape(c.cluster)}</td><td>{v:.3f}</td>"
                   f"<td>{escape(c.key)}</td></tr>" for c, n, v in rows)
    return ["<h2>Measured latencies</h2>",
            f'<table id="latencies"><tr><th>measurement</th><th>cluster</th><th>seconds</th><th>check</th></tr>{body}</table>']


def _failures(run: Run) -> list[str]:
    failing = [c for c in run.failed_must + run.failed_should if c.outcome != "blocked"]
    if not failing:
        return []
    out = ["<h2>Failures</h2>"]
    for c in failing:
        kind = "failure" + ("" if c.requirement == "must" else " warning")
        out.append(f'<div class="{kind}"><b>{escape(c.key)}</b> <span class="muted">({c.requirement}, '
                   f'{escape(outcome_words(c))}, {c.seconds:.1f} s)</span>'
                   f'<div class="headline">{escape(clip(c.message, 400))}</div><pre>{escape(c.detail.strip())}</pre></div>')
    if run.bundle:
        out.append(f'<p>Diagnostics bundle: <code>{escape(run.bundle)}</code></p>')
    return out


def _run_properties(run: Run) -> str:
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in run.properties.items())
    return f'<table id="run">{rows}</table>'
