"""The timing table: every wait's budget comes from conformance/core/timing.py, derived from the stack's intervals."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from conformance.core import timing
from conformance.probes.metrics.remote_write.config import scrape_interval_of
from conformance.core.http import Unreachable

ROOT = Path(__file__).resolve().parents[1]
# eventually.py: Wait's own defaults
TABLE = {ROOT / "conformance" / "core" / "timing.py", ROOT / "conformance" / "core" / "eventually.py"}


def literal_waits(path: Path) -> list[int]:
    """The lines of each Wait(...) or .with_(...) call in the file given a number literally."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name not in ("Wait", "with_"):
            continue
        values = [*node.args, *(k.value for k in node.keywords)]
        if any(isinstance(v, ast.Constant) and isinstance(v.value, (int, float)) for v in values):
            found.append(node.lineno)
    return found


def test_no_suite_or_probe_builds_a_wait_from_a_literal_number():
    files = [p for d in ("suites", "conformance") for p in (ROOT / d).rglob("*.py") if p not in TABLE]
    assert [f"{p.relative_to(ROOT)}:{line}" for p in files for line in literal_waits(p)] == []


def test_the_literal_wait_scan_finds_one(tmp_path):
    bad = tmp_path / "suite.py"
    bad.write_text("from conformance import timing\nW = Wait(timeout=60)\nV = timing.ready().with_(timeout=5)\n"
                   "U = timing.scraped(1)\n")
    assert literal_waits(bad) == [2, 3]


@pytest.mark.parametrize("values", ["kube-prometheus-stack.yaml", "kube-prometheus-stack-remote.yaml"])
def test_the_fallback_intervals_are_what_the_stack_sets(values):
    spec = yaml.safe_load((ROOT / "stack" / "values" / values).read_text())["prometheus"]["prometheusSpec"]
    assert timing.STACK.scrape == float(spec["scrapeInterval"].rstrip("s"))
    assert "evaluationInterval" not in spec and timing.STACK.evaluation == timing.OPERATOR_SCRAPE  # operator default


def test_a_scrape_budget_follows_the_interval():
    assert timing.scraped(15).timeout == timing.STACK.reload + 3 * 15
    assert timing.scraped(1).timeout < 20 < timing.scraped(30).timeout
    assert timing.scraped(1).max_delay <= 1  # never looks less often than the state can change
    assert timing.scraped(15).timeout < timing.forwarded(15).timeout < timing.after_traffic(15).timeout


def test_the_other_budgets_follow_their_intervals():
    assert timing.rules_evaluated(1).timeout < timing.rules_evaluated(30).timeout
    assert timing.alert_delivered(30, 60).timeout == 60 + 30 + timing.MARGIN
    assert timing.spans_stored(1).timeout < timing.spans_stored(5).timeout
    assert timing.dashboards_provisioned(10).timeout == 30


class Config:
    def __init__(self, text: str | Exception) -> None:
        self.text = text

    def config_yaml(self) -> str:
        if isinstance(self.text, Exception):
            raise self.text
        return self.text


def test_the_interval_is_read_from_the_loaded_configuration():
    assert scrape_interval_of(Config("global:\n  scrape_interval: 1s\n")) == 1.0
    assert scrape_interval_of(Config("global:\n  scrape_interval: 1m30s\n")) == 90.0


def test_an_unread_interval_falls_back():
    assert scrape_interval_of(None) == timing.STACK.scrape
    down = Config(Unreachable("Prometheus", "http://p:9090", "connection refused"))
    assert scrape_interval_of(down) == timing.STACK.scrape
    assert scrape_interval_of(Config("global: {}\n")) == timing.PROMETHEUS_SCRAPE  # Prometheus's own 1m
    assert scrape_interval_of(Config("global: [unclosed\n")) == timing.STACK.scrape
