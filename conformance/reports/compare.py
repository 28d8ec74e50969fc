"""Two runs side by side (before and after an upgrade): what changed in versions, outcomes and latencies."""

from __future__ import annotations

from pathlib import Path

from conformance.reports.model import Run, load_run
from conformance.reports.text import OUTCOME_WORDS, verdict_line


def render_files(before: Path, after: Path) -> str:
    return render(load_run(before), load_run(after))


def render(before: Run, after: Run) -> str:
    """Markdown: verdicts, version changes, every check whose outcome changed, latencies before → after."""
    lines = ["## Upgrade: before and after", "",
             f"- before: {verdict_line(before)}", f"- after: {verdict_line(after)}", ""]
    changed = version_changes(before, after)
    lines += ["### Versions", ""]
    if changed:
        lines += ["| pin | before | after |", "|---|---|---|", *(f"| {k} | {a} | {b} |" for k, a, b in changed)]
    else:
        lines.append("no pinned version changed")
    lines += ["", "### Checks", "", "| check | before | after |", "|---|---|---|"]
    old = {c.key: c for c in before.checks}
    new = {c.key: c for c in after.checks}
    for key in [*old, *[k for k in new if k not in old]]:
        a, b = old.get(key), new.get(key)
        words = [OUTCOME_WORDS.get(c.outcome, c.outcome) if c else "absent" for c in (a, b)]
        mark = "" if words[0] == words[1] else " ⟵ changed"
        lines.append(f"| {key} | {words[0]} | {words[1]}{mark} |")
    lat = latency_rows(old, new)
    if lat:
        lines += ["", "### Latencies (s)", "", "| check · measurement | before | after |", "|---|---|---|", *lat]
    return "\n".join(lines) + "\n"


def version_changes(before: Run, after: Run) -> list[tuple[str, str, str]]:
    keys = sorted(k for k in {*before.properties, *after.properties} if k.startswith(("pin.", "tool.")))
    return [(k, before.properties.get(k, "—"), after.properties.get(k, "—")) for k in keys
            if before.properties.get(k) != after.properties.get(k)]


def latency_rows(old: dict, new: dict) -> list[str]:
    rows = []
    for key in sorted({*old, *new}):
        a = old[key].latencies if key in old else {}
        b = new[key].latencies if key in new else {}
        for name in sorted({*a, *b}):
            fa = f"{a[name]:.2f}" if name in a else "—"
            fb = f"{b[name]:.2f}" if name in b else "—"
            rows.append(f"| {key} · {name} | {fa} | {fb} |")
    return rows
