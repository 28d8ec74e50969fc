"""Words and symbols shared by the Markdown and HTML reports."""

from __future__ import annotations

from conformance.reports.model import Check

OUTCOME_WORDS = {
    "passed": "passed", "failed": "failed", "timed_out": "timed out", "precondition": "precondition unmet",
    "error": "error", "skipped": "skipped",
}
SYMBOL = {"passed": "✅", "failed": "❌", "warning": "⚠️", "skipped": "⏭️", "unchecked": "·"}
# In the HTML page: glyphs every common text font has (a CI browser may have no emoji font).
GLYPH = {"passed": "✓", "failed": "✗", "warning": "⚠", "skipped": "–", "unchecked": "·"}


def outcome_words(check: Check) -> str:
    return OUTCOME_WORDS.get(check.outcome, check.outcome)


def cell_status(check: Check) -> str:
    """failed / warning / skipped / passed for one check (a failing `should` is a warning)."""
    if check.failing:
        return "failed" if check.requirement == "must" else "warning"
    return "skipped" if check.outcome == "skipped" else "passed"


def measurement_words(name: str) -> str:
    """`log_propagation_seconds` -> `log propagation (s)`."""
    if name.endswith("_seconds"):
        return name.removesuffix("_seconds").replace("_", " ") + " (s)"
    return name.replace("_", " ")


def check_title(check: Check) -> str:
    """The check without its cluster suffix: `logs::log canary reaches the primary loki`."""
    base = check.name.split("[", 1)[0]
    params = check.name[len(base):].strip("[]").split("-")
    extra = [p for p in params if p and p != check.cluster]
    return f"{check.area}::{base}" + (f" ({', '.join(extra)})" if extra else "")
