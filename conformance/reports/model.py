"""A conformance run as the reports see it, read back from the post-processed JUnit file."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

# The area markers in the order reports list them (a check's first one names its area).
AREAS = ("logs", "metrics", "mesh", "kiali", "dashboards", "platform", "alerting", "app_metrics", "kubebench", "kube_state_metrics", "events", "configmap_dashboards", "tracing")
# Outcomes that make a check red (the `outcome` property of conformance/outcomes.py).
FAILING = ("failed", "timed_out", "precondition", "error")
# Per-check properties that describe the check rather than measure something.
META = ("requirement", "outcome", "cluster", "area", "nodeid")


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
class Run:
    """Every check of one run plus the run-level properties (topology, pins, tools)."""

    checks: list[Check]
    properties: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    timestamp: str = ""

    @property
    def clusters(self) -> list[str]:
        names = [n for n in self.properties.get("clusters", "").split(",") if n]
        return names or sorted({c.cluster for c in self.checks if c.cluster})

    @property
    def failed_must(self) -> list[Check]:
        return [c for c in self.checks if c.failing and c.requirement == "must"]

    @property
    def failed_should(self) -> list[Check]:
        return [c for c in self.checks if c.failing and c.requirement == "should"]

    @property
    def verdict(self) -> str:
        """PASS, PASS with warnings (a `should` failed), or FAIL (a `must` failed)."""
        if self.failed_must:
            return "FAIL"
        return "PASS with warnings" if self.failed_should else "PASS"

    def count(self, outcome: str) -> int:
        if outcome == "failing":
            return sum(c.failing for c in self.checks)
        return sum(c.outcome == outcome for c in self.checks)

    @property
    def bundle(self) -> str:
        return self.properties.get("diagnostics", "")


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
    # pytest orders session-scoped parametrizations by cluster; people read by area.
    checks.sort(key=lambda c: (AREAS.index(c.area) if c.area in AREAS else len(AREAS), c.area))
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
        area=case.get("classname", ""),
        name=case.get("name", ""),
        cluster=props.get("cluster", ""),
        outcome=outcome,
        requirement=props.get("requirement", "must"),
        seconds=float(case.get("time") or 0),
        properties=props,
        message=(shown.get("message") or "") if shown is not None else "",
        detail=(shown.text or "") if problem is not None else "",
    )
