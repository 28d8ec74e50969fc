"""A conformance run as the reports see it: its checks, its verdict and root causes.

Read back from the post-processed JUnit file, or built as the checks end (the pytest
plugin's verdict and closing block), from the same per-check properties.

The verdict, and the exit status of a run that ends with it:
- PASS (0): at least one check ran, and every selected `must` check ran and passed;
- FAIL (1): a `must` check failed (or a `should` under --strict);
- ERROR (4): the run stopped before its checks: arguments, topology, preflight, bring-up;
- INCOMPLETE (5): nothing failed, but a `must` check could not observe its hop for a reason
  the topology does not declare (a service it does not give, no Kubernetes access, a
  write under --read-only), or no check ran at all.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path

from conformance.core.names import marker_name
from conformance.reports.junit import check_name

# The area markers in the order reports list them (a check's first one names its area).
AREAS = ("logs", "metrics", "mesh", "kiali", "dashboards", "platform", "alerting", "app_metrics", "kube_bench", "kube_state_metrics", "events", "configmap_dashboards", "tracing")
# Outcomes that make a check red (the `outcome` property of conformance/core/outcomes.py); "blocked": not run because
# a hop it needs was found broken by another check (it counts under that root cause).
FAILING = ("failed", "timed_out", "precondition", "error", "blocked")
# Outcomes of a check that did not observe its hop: could not (INCOMPLETE when a must), or declared not there.
UNOBSERVED = "skipped"
NOT_APPLICABLE = "not_applicable"
# Per-check properties that describe the check rather than measure something.
META = ("requirement", "outcome", "cluster", "area", "nodeid", "hop", "blocked_by", "seq", "missing_part")
VERDICTS = ("PASS", "FAIL", "INCOMPLETE", "ERROR")
EXIT_CODES = {"PASS": 0, "FAIL": 1, "ERROR": 4, "INCOMPLETE": 5}


@dataclass(frozen=True)
class Check:
    """One testcase: one check on one cluster."""

    area: str
    name: str
    cluster: str
    outcome: str
    requirement: str
    seconds: float
    properties: dict[str, str]
    message: str = ""
    detail: str = ""

    @property
    def key(self) -> str:
        """The testcase's name as CI shows it, e.g. `logs::log canary reaches the primary loki[workstation]`."""
        return f"{self.area}::{self.name}"

    @property
    def failing(self) -> bool:
        return self.outcome in FAILING

    @property
    def seq(self) -> int:
        """Where the check was collected (the reading order); checks without it come last."""
        return int(self.properties.get("seq", "1000000"))

    @property
    def ran(self) -> bool:
        """The check observed its hop: it passed or found it broken (not blocked by another, not skipped)."""
        return self.outcome == "passed" or (self.failing and self.outcome != "blocked")

    @property
    def hop(self) -> str:
        """The hop a failure names (the check's own, or the one it needed), from its diagnosis."""
        return self.properties.get("hop") or self.message.split(": ", 1)[0]

    @property
    def cause(self) -> str:
        """The failure's diagnosis without its hop."""
        text = self.message
        return text[len(self.hop) + 2:] if text.startswith(self.hop + ": ") else text

    def with_outcome(self, outcome: str, message: str) -> "Check":
        return replace(self, outcome=outcome, message=message)

    @property
    def measurements(self) -> dict[str, str]:
        return {k: v for k, v in self.properties.items() if k not in META}

    @property
    def latencies(self) -> dict[str, float]:
        """Measurements in seconds (log_propagation_seconds, remote_write_sample_age_seconds, ...)."""
        out = {}
        for k, v in self.measurements.items():
            if k.endswith("_seconds"):
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out


@dataclass(frozen=True)
class RootCause:
    """A hop found broken: the first check's diagnosis, the other checks that failed on it, the ones it blocked."""

    hop: str
    cause: str
    checks: list[Check]
    blocked: list[Check]


@dataclass(frozen=True)
class Run:
    """Every check of one run plus the run-level properties (topology, pins, tools; `error` when it stopped early)."""

    checks: list[Check]
    properties: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    timestamp: str = ""

    @property
    def clusters(self) -> list[str]:
        names = [n for n in self.properties.get("clusters", "").split(",") if n]
        return names or sorted({c.cluster for c in self.checks if c.cluster})

    @property
    def strict(self) -> bool:
        return self.properties.get("strict") == "true"

    @property
    def error(self) -> str:
        """Why the run stopped before its checks ("" when it did not)."""
        return self.properties.get("error", "")

    @property
    def failed_must(self) -> list[Check]:
        return [c for c in self.checks if c.failing and c.requirement == "must"]

    @property
    def failed_should(self) -> list[Check]:
        return [c for c in self.checks if c.failing and c.requirement == "should"]

    @property
    def unobserved_must(self) -> list[Check]:
        """Must checks that could not observe their hop for a reason the topology does not declare."""
        return [c for c in self.checks if c.outcome == UNOBSERVED and c.requirement == "must"]

    @property
    def ran(self) -> int:
        return sum(c.ran for c in self.checks)

    @property
    def verdict(self) -> str:
        """PASS, FAIL, INCOMPLETE or ERROR (this module's docstring says when)."""
        if self.error:
            return "ERROR"
        if self.failed_must or (self.strict and self.failed_should):
            return "FAIL"
        if self.unobserved_must or not self.ran:
            return "INCOMPLETE"
        return "PASS"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def count(self, outcome: str) -> int:
        if outcome == "failing":
            return sum(c.failing for c in self.checks)
        return sum(c.outcome == outcome for c in self.checks)

    @property
    def root_causes(self) -> list[RootCause]:
        """The hops the failing checks found broken, in the order found (must first), each with the checks it blocked."""
        failing = [c for c in self.failed_must + self.failed_should if c.outcome != "blocked"]
        grouped: dict[str, list[Check]] = {}
        for c in failing:
            grouped.setdefault(c.hop, []).append(c)
        blocked = [c for c in self.checks if c.outcome == "blocked"]
        causes = []
        for hop, checks in grouped.items():
            names = {c.name for c in checks}
            mine = [b for b in blocked if b.properties.get("blocked_by") in names or b.hop == hop]
            causes.append(RootCause(hop, checks[0].cause, checks, mine))
        orphans = [b for b in blocked if not any(b in cause.blocked for cause in causes)]
        if orphans:  # the check that found the hop broken was not selected in this run: the blocked check says it
            for b in orphans:
                causes.append(RootCause(b.hop, b.cause, [], [b]))
        return causes

    @property
    def unobserved_reasons(self) -> list[tuple[str, list[Check]]]:
        """Why checks did not observe their hop (must first), one entry per reason, with the checks it concerns."""
        grouped: dict[str, list[Check]] = {}
        for c in sorted((c for c in self.checks if c.outcome == UNOBSERVED), key=lambda c: c.requirement != "must"):
            grouped.setdefault(c.message or "no reason given", []).append(c)
        return list(grouped.items())

    @property
    def bundle(self) -> str:
        return self.properties.get("diagnostics", "")


def check_from_properties(props: dict[str, str], *, message: str = "", detail: str = "", seconds: float = 0.0,
                          area: str = "", name: str = "") -> Check:
    """A check from the per-check properties the pytest plugins record (the same ones the JUnit file carries)."""
    nodeid = props.get("nodeid", "")
    return Check(
        area=marker_name(area or props.get("area", "")),
        name=name or (check_name(nodeid) if nodeid else ""),
        cluster=props.get("cluster", ""),
        outcome=props.get("outcome", "passed"),
        requirement=props.get("requirement", "must"),
        seconds=seconds,
        properties=props,
        message=message,
        detail=detail,
    )


def load_run(junit: Path) -> Run:
    """Read a post-processed JUnit file (conformance/reports/junit.py wrote it)."""
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    checks: list[Check] = []
    props: dict[str, str] = {}
    seconds, timestamp = 0.0, ""
    for suite in suites:
        props.update(_properties(suite))
        seconds += float(suite.get("time") or 0)
        timestamp = timestamp or suite.get("timestamp", "")
        checks += [_check(case) for case in suite.findall("testcase")]
    # pytest orders session-scoped parametrizations by cluster, xdist by when a worker finished: people read by area,
    # then in the order the checks were collected.
    checks.sort(key=lambda c: (AREAS.index(c.area) if c.area in AREAS else len(AREAS), c.area, c.seq))
    return Run(checks, props, seconds, timestamp)


def _properties(element: ET.Element) -> dict[str, str]:
    node = element.find("properties")
    return {} if node is None else {p.get("name", ""): p.get("value", "") for p in node.findall("property")}


def _check(case: ET.Element) -> Check:
    props = _properties(case)
    problem = next((case.find(t) for t in ("failure", "error") if case.find(t) is not None), None)
    skipped = case.find("skipped")
    if "outcome" in props:
        outcome = props["outcome"]
    elif problem is not None:
        outcome = "failed" if problem.tag == "failure" else "error"
    else:
        outcome = "skipped" if skipped is not None else "passed"
    shown = problem if problem is not None else skipped
    return Check(
        area=marker_name(case.get("classname", "")),  # kubebench: a report from before the part was hyphenated
        name=case.get("name", ""),
        cluster=props.get("cluster", ""),
        outcome=outcome,
        requirement=props.get("requirement", "must"),
        seconds=float(case.get("time") or 0),
        properties=props,
        message=(shown.get("message") or "") if shown is not None else "",
        detail=(shown.text or "") if problem is not None else "",
    )
