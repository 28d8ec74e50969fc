"""reports/summary.md: short enough for a GitHub step summary."""

from __future__ import annotations

from conformance.reports.model import Run
from conformance.reports.text import SYMBOL, cell_status, check_title, measurement_words, outcome_words

MAX_FAILURES = 20  # a step summary is read, not scrolled


def render(run: Run) -> str:
    """Verdict, checks by cluster, failures with their one-line diagnosis, measured latencies."""
    clusters = run.clusters
    lines = [f"## Conformance: {verdict_line(run)}", ""]
    lines.append(f"{len(run.checks)} checks on {', '.join(clusters) or 'no cluster'}: "
                 f"{run.count('passed')} passed, {run.count('failing')} failing, {run.count('skipped')} skipped "
                 f"in {run.seconds:.0f} s (topology {run.properties.get('topology', '?')}).")
    lines += ["", *checks_table(run, clusters)]
    failing = run.failed_must + run.failed_should
    if failing:
        lines += ["", "### Failures", ""]
        for c in failing[:MAX_FAILURES]:
            lines.append(f"- **{c.key}** ({c.requirement}, {outcome_words(c)}): {c.message}")
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


def verdict_line(run: Run, symbols: dict[str, str] = SYMBOL) -> str:
    """One line: the verdict and why."""
    if run.failed_must:
        return f"{symbols['failed']} FAIL: {len(run.failed_must)} must check(s) failing"
    if run.failed_should:
        return f"{symbols['warning']} PASS with warnings: {len(run.failed_should)} should check(s) failing"
    return f"{symbols['passed']} PASS"


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
