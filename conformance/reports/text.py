"""Words and symbols shared by the Markdown and HTML reports."""

from __future__ import annotations

from datetime import datetime

from conformance.reports.model import Check, Run

OUTCOME_WORDS = {
    "passed": "passed", "failed": "failed", "timed_out": "timed out", "precondition": "precondition unmet",
    "error": "error", "skipped": "not observed", "not_applicable": "not applicable",
    "blocked": "not run (needs a broken hop)",
}
SYMBOL = {"passed": "✅", "failed": "❌", "warning": "⚠️", "skipped": "⏭️", "unchecked": "·", "not_run": "⛔"}
# In the HTML page: glyphs every common text font has (a CI browser may have no emoji font).
GLYPH = {"passed": "✓", "failed": "✗", "warning": "⚠", "skipped": "–", "unchecked": "·", "not_run": "⊘"}
VERDICT_SYMBOL = {"PASS": "✅", "FAIL": "❌", "INCOMPLETE": "⚠️", "ERROR": "⛔"}
LINE_LIMIT = 200  # characters of a cause a closing line quotes; the JUnit text keeps all of it


def outcome_words(check: Check) -> str:
    return OUTCOME_WORDS.get(check.outcome, check.outcome)


def cell_status(check: Check) -> str:
    """failed / warning / not_run / skipped / passed for one check (a failing `should` is a warning; a check that
    a broken hop stopped was not run, and is not counted red: its root cause is)."""
    if check.outcome == "blocked":
        return "not_run"
    if check.failing:
        return "failed" if check.requirement == "must" else "warning"
    return "skipped" if check.outcome in ("skipped", "not_applicable") else "passed"


def clip(text: str, limit: int = LINE_LIMIT) -> str:
    """One line of at most limit characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def counts(run: Run) -> str:
    """What became of the run's checks, in words: '14 passed, 2 failed, 11 not run, 3 not observed, 2 not applicable'."""
    failed = sum(c.failing and c.outcome != "blocked" for c in run.checks)
    parts = [f"{run.count('passed')} passed", f"{failed} failed"]
    for outcome, words in (("blocked", "not run (a hop they need is broken)"), ("skipped", "not observed"),
                           ("not_applicable", "not applicable")):
        if run.count(outcome):
            parts.append(f"{run.count(outcome)} {words}")
    return f"{plural(len(run.checks), 'check')}: " + ", ".join(parts)


def verdict_line(run: Run) -> str:
    """The verdict, why, and the counts: the first line of the console's closing block, summary.md and index.html."""
    verdict = run.verdict
    if verdict == "ERROR":
        return f"ERROR: {clip(run.error, 400)}"
    if verdict == "FAIL":
        causes = run.root_causes
        first = f", first {causes[0].hop}" if causes else ""
        why = f"{plural(len(causes) or 1, 'broken hop')}{first}"
    elif verdict == "INCOMPLETE":
        why = ("no check ran" if not run.ran else
               f"{plural(len(run.unobserved_must), 'must check')} could not observe {'its' if len(run.unobserved_must) == 1 else 'their'} hop")
    else:
        warned = len(run.failed_should)
        why = "every selected must check passed" + (f" ({plural(warned, 'should check')} failing)" if warned else "")
    return f"{verdict}: {why} · {counts(run)} · exit {run.exit_code}"


def root_cause_lines(run: Run, limit: int = 10) -> list[str]:
    """One line per broken hop: hop, cause (trimmed), how many checks failed on it and how many it stopped."""
    lines = []
    for i, cause in enumerate(run.root_causes[:limit], 1):
        found = [f"{plural(len(cause.checks), 'check')} failed on it"] if len(cause.checks) > 1 else []
        if cause.blocked:
            found.append(f"{plural(len(cause.blocked), 'check')} need{'s' if len(cause.blocked) == 1 else ''} this hop")
        who = f" (found by {cause.checks[0].key})" if cause.checks else ""
        tail = f" — {'; '.join(found)}" if found else ""
        lines.append(f"{i}. {cause.hop}: {clip(cause.cause)}{who}{tail}")
    if len(run.root_causes) > limit:
        lines.append(f"… and {len(run.root_causes) - limit} more (see junit.xml)")
    return lines


def unobserved_lines(run: Run, limit: int = 10) -> list[str]:
    """One line per reason checks could not observe their hop, with how many (must ones first)."""
    lines = []
    reasons = run.unobserved_reasons
    for reason, checks in reasons[:limit]:
        musts = sum(c.requirement == "must" for c in checks)
        which = f"{plural(len(checks), 'check')}" + ("" if musts == len(checks) else f", {musts} must")
        lines.append(f"- {clip(reason)} ({which})")
    if len(reasons) > limit:
        lines.append(f"- … and {len(reasons) - limit} more reasons (see junit.xml)")
    return lines


def most_first(counted: dict[str, int]) -> list[tuple[str, int]]:
    """(name, count), the largest count first, then by name: the same order whichever worker finished first."""
    return sorted(counted.items(), key=lambda item: (-item[1], item[0]))


def not_applicable_line(run: Run, limit: int = 120) -> str:
    """The checks the topology declares out of this stack, in one line counted by reason: the optional parts it does
    not list by part, every other reason as given (`-rs` prints them one per check)."""
    checks = [c for c in run.checks if c.outcome == "not_applicable"]
    if not checks:
        return ""
    parts: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for c in checks:
        part = c.properties.get("missing_part")
        if part:
            parts[part] = parts.get(part, 0) + 1
        else:
            reasons[c.message or "no reason given"] = reasons.get(c.message or "no reason given", 0) + 1
    groups = (["parts the topology does not list: " + ", ".join(f"{p} {n}" for p, n in most_first(parts))]
              if parts else [])
    groups += [f"{clip(reason, limit)} ({n})" for reason, n in most_first(reasons)]
    return f"Not applicable: {plural(len(checks), 'check')} — " + "; ".join(groups)


def time_lines(run: Run, limit: int = 12, least: float = 1.0) -> list[str]:
    """Each check's own time, longest first: the ones of at least `least` seconds, then how many took less."""
    timed = sorted((c for c in run.checks if c.seconds >= least), key=lambda c: -c.seconds)
    lines = [f"{c.seconds:6.1f} s  {c.key}" for c in timed[:limit]]
    rest = len(run.checks) - len(lines)
    if rest:
        under = timed[limit].seconds if len(timed) > limit else least
        lines.append(f"({plural(rest, 'more check') if lines else ('all ' if rest > 1 else '') + plural(rest, 'check')} "
                     f"under {under:.1f} s)")
    return lines


def closing_block(run: Run) -> list[str]:
    """The verdict line, then the root causes, why checks were not observed, the not applicable ones in one line, and
    each check's own time."""
    lines = [verdict_line(run)]
    causes = root_cause_lines(run) if run.verdict != "ERROR" else []
    if causes:
        lines += ["Root causes:", *(f"  {line}" for line in causes)]
    unobserved = unobserved_lines(run)
    if unobserved:
        lines += ["Not observed:", *(f"  {line}" for line in unobserved)]
    declared = not_applicable_line(run)
    if declared:
        lines.append(declared)
    times = time_lines(run)
    if times and run.checks:
        lines += ["Check times:", *(f"  {line}" for line in times)]
    return lines


def when(stamp: str) -> str:
    """An ISO time as people read it: '2026-12-05 09:12:03 UTC' (date, time to the second, zone)."""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if moment.tzinfo is None:
        moment = moment.astimezone()  # pytest writes the local time without its zone
    return moment.strftime("%Y-%m-%d %H:%M:%S ") + (moment.tzname() or moment.strftime("%z"))


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
