"""reports/summary.md: short enough for a GitHub step summary; the verdict and the root causes come first."""

from __future__ import annotations

from conformance.reports.model import Run
from conformance.reports.text import (SYMBOL, VERDICT_SYMBOL, cell_status, check_title, clip, measurement_words,
                                      not_applicable_line, outcome_words, root_cause_lines, unobserved_lines, verdict_line,
                                      when)

MAX_FAILURES = 20  # a step summary is read, not scrolled


def render(run: Run) -> str:
    """Verdict, root causes, what was not observed, checks by cluster, failures with their diagnosis, latencies."""
    clusters = run.clusters
    lines = [f"## Conformance: {VERDICT_SYMBOL[run.verdict]} {verdict_line(run)}", ""]
    lines += inventory_lines(run)
    causes = root_cause_lines(run) if run.verdict != "ERROR" else []
    if causes:
        lines += ["### Root causes", "", *causes, ""]
    unobserved = unobserved_lines(run)
    if unobserved:
        lines += ["### Not observed", "", *unobserved, ""]
    declared = not_applicable_line(run)
    if declared:
        lines += [declared, ""]
    lines.append(f"Run of {when(run.properties.get('started', run.timestamp))} on {', '.join(clusters) or 'no cluster'} "
                 f"in {run.seconds:.0f} s (topology {run.properties.get('topology', '?')}"
                 + (f", selection {run.properties['selection']}" if run.properties.get("selection") else "") + ").")
    if run.checks:
        lines += ["", *checks_table(run, clusters)]
    failing = [c for c in run.failed_must + run.failed_should if c.outcome != "blocked"]
    if failing:
        lines += ["", "### Failures", ""]
        for c in failing[:MAX_FAILURES]:
            lines.append(f"- **{c.key}** ({c.requirement}, {outcome_words(c)}): {clip(c.message, 400)}")
        if len(failing) > MAX_FAILURES:
            lines.append(f"- … and {len(failing) - MAX_FAILURES} more (see junit.xml)")
    latencies = latency_rows(run, clusters)
    if latencies:
        lines += ["", "### Measured latencies", "", "| measurement | " + " | ".join(clusters) + " |",
                  "|---|" + "---|" * len(clusters), *latencies]
    if run.bundle:
        lines += ["", f"Diagnostics bundle: `{run.bundle}`"]
    lines += ["", "Full report: `reports/index.html` (JUnit: `reports/junit.xml`)."]
    return "\n".join(lines) + "\n"


def inventory_lines(run: Run) -> list[str]:
    """The stack inventory (JUnit properties inventory.<cluster>.<service>), a line per cluster, and its drift from the
    pins (should) in one line."""
    found: dict[str, list[str]] = {}
    for key, value in run.properties.items():
        if key.startswith("inventory."):
            cluster, service = key.removeprefix("inventory.").split(".", 1)
            where = value.split(" [", 1)[0] + (" " + value.rsplit("]  ", 1)[1] if "]  " in value else "")
            found.setdefault(cluster, []).append(f"{service} {where}")
    if not found:
        return []
    lines = ["**Stack inventory** (where each service was found, the version it reports):", ""]
    lines += [f"- **{cluster}**: " + " · ".join(services) for cluster, services in found.items()]
    drift = [f"{k.removeprefix('drift.')} {v}" for k, v in run.properties.items() if k.startswith("drift.")]
    lines.append(f"- drift from the pins (should): {'; '.join(drift) if drift else 'none'}")
    return lines + [""]


def checks_table(run: Run, clusters: list[str]) -> list[str]:
    rows: dict[str, dict[str, str]] = {}
    for c in run.checks:
        rows.setdefault(check_title(c), {})[c.cluster] = SYMBOL[cell_status(c)]
    out = ["| check | " + " | ".join(clusters) + " |", "|---|" + "---|" * len(clusters)]
    for title, cells in rows.items():
        out.append(f"| {title} | " + " | ".join(cells.get(n, "") for n in clusters) + " |")
    return out


def latency_rows(run: Run, clusters: list[str]) -> list[str]:
    values: dict[str, dict[str, float]] = {}
    for c in run.checks:
        for name, v in c.latencies.items():
            values.setdefault(name, {})[c.cluster] = max(v, values.get(name, {}).get(c.cluster, v))
    return [f"| {measurement_words(name)} | " + " | ".join(f"{by[n]:.2f}" if n in by else "" for n in clusters) + " |"
            for name, by in sorted(values.items())]
