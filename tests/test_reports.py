"""The reports of a real run against the proving ground with a broken hop: JUnit, summary.md, index.html."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from conformance.provision.junit import annotate
from conformance.reports import write
from conformance.reports.model import AREAS, load_run
from tests.browser import INSTALL_HINT, chromium, dump_dom, screenshot
from tests.png import colour_counts
from tests.proving_kube import stack_prometheus_pair
from tests.proving_stack import GRAFANA_PASSWORD, GRAFANA_PASSWORD_ENV, start_stack
from tests.suite_runner import SuiteRun, run_suites

# One worker: the module shares one broken run (a Prometheus pair, the stack's fakes and a child suite run).
pytestmark = pytest.mark.xdist_group("reports-broken")

SCHEMA = Path(__file__).parent / "schemas" / "junit-10.xsd"
CANARY = "logs::log canary reaches the primary loki[{}]"
BROKEN_HOP = "remote workstation Promtail → oke Loki"
RED = (0xC6, 0x28, 0x28)
GREEN = (0x2E, 0x7D, 0x32)


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> SuiteRun:
    """Every area but mesh (its app is not on the proving ground) with the workstation Promtail shipping nothing.

    The Prometheus pair scrapes what the stack's would (every required job), so the platform checks pass."""
    folder = tmp_path_factory.mktemp("broken")
    with stack_prometheus_pair(folder / "prometheus") as pair, \
            start_stack(folder, pair, silent_agents=("workstation",)) as stack:
        # Not the drift should-check: the fakes are not the pins, and its root cause is not what these tests read
        # (tests/test_inventory_drift.py has its own).
        return run_suites(folder, "--topology", str(stack.topology()), "-m", "not mesh", "-k", "not pinned_versions",
                          "--timeout-scale", "0.05", env={GRAFANA_PASSWORD_ENV: GRAFANA_PASSWORD})


def test_junit_names_each_check_per_cluster_with_its_measurements_and_the_run(broken):
    assert broken.code == 1, broken.output
    names = broken.names()
    assert CANARY.format("oke") in names and CANARY.format("workstation") in names
    assert "metrics::remote series are fresh[workstation]" in names
    areas = "|".join(AREAS)  # every area's checks are named, the optional parts' (skipped here) too
    assert all(re.fullmatch(rf"({areas})::[a-z0-9 ]+(\[[a-z0-9-]+\])?", n) for n in names), names
    ok, bad = broken.properties(CANARY.format("oke")), broken.properties(CANARY.format("workstation"))
    # Promtail's batchwait is 1 s (the fake ships as the real one does), plus the canary's polling.
    assert float(ok["log_propagation_seconds"]) < 2.5 and ok["outcome"] == "passed"
    assert bad["outcome"] == "timed_out" and bad["requirement"] == "must" and bad["cluster"] == "workstation"
    assert bad["nodeid"] == "suites/test_logs.py::test_log_canary_reaches_the_primary_loki[workstation]"
    failure = broken.cases()[CANARY.format("workstation")].find("failure")
    assert failure.get("message").startswith(f"{BROKEN_HOP}: no canary line after 3 s")  # one line: the hop
    assert "\n" not in failure.get("message") and "last observed" in failure.text  # the evidence in the body
    run = ET.parse(broken.junit).getroot().find("testsuite/properties")
    props = {p.get("name"): p.get("value") for p in run}
    assert props["clusters"] == "oke,workstation" and props["topology"].endswith("topology.yaml")
    assert props["pin.istio"] and props["pin.chart.kube-prometheus-stack"] and props["tool.kubectl"]


def test_junit_validates_against_the_jenkins_schema(broken):
    xmlschema.XMLSchema(SCHEMA).validate(stripped_of_testcase_properties(broken.junit))
    # The one extension: per-check <properties>, which Jenkins' JUnit plugin keeps (keepProperties)
    # and GitLab ignores. Allow exactly that and validate the report as written.
    text = SCHEMA.read_text()
    anchor = '<xs:element ref="skipped"/>'
    assert text.count(anchor) == 1
    extended = xmlschema.XMLSchema(text.replace(anchor, anchor + '<xs:element ref="properties"/>'))
    extended.validate(str(broken.junit))


def stripped_of_testcase_properties(junit: Path) -> ET.ElementTree:
    tree = ET.parse(junit)
    for case in tree.getroot().iter("testcase"):
        for props in case.findall("properties"):
            case.remove(props)
    return tree


def test_the_diagnostics_bundle_lands_in_system_out_and_in_the_rerendered_reports(broken, tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_bytes(broken.junit.read_bytes())
    annotate(junit, Path("/work/reports/diagnostics"))  # what `nox -s conformance` does after a failed kind run
    xmlschema.XMLSchema(SCHEMA).validate(stripped_of_testcase_properties(junit))
    case = next(c for c in ET.parse(junit).getroot().iter("testcase")
                if f"{c.get('classname')}::{c.get('name')}" == CANARY.format("workstation"))
    assert case.find("system-out").text.startswith("diagnostics bundle: /work/reports/diagnostics")
    write.render(junit)
    assert "Diagnostics bundle: `/work/reports/diagnostics`" in (tmp_path / "summary.md").read_text()
    assert "<code>/work/reports/diagnostics</code>" in (tmp_path / "index.html").read_text()


def test_summary_names_the_failing_cluster_and_hop(broken):
    summary = (broken.junit.parent / "summary.md").read_text()
    # The canary waits out its budget for the broken hop; the cluster-label check, which needs every cluster's, then
    # stops at once: one root cause, with the check it stopped counted under it.
    assert summary.startswith(f"## Conformance: ❌ FAIL: 1 broken hop, first {BROKEN_HOP} · ")
    assert f"\n1. {BROKEN_HOP}: no canary line after 3 s; " in summary
    assert "— 1 check needs this hop" in summary
    assert f"- **{CANARY.format('workstation')}** (must, timed out): {BROKEN_HOP}: no canary line" in summary
    assert "| logs::log canary reaches the primary loki | ✅ | ❌ |" in summary
    assert re.search(r"\| log propagation \(s\) \| \d\.\d\d \|", summary)  # Promtail's 1 s batchwait and more
    assert len(summary.splitlines()) < 80  # a step summary, not a log


def test_no_report_carries_the_grafana_password(broken):
    for name in ("junit.xml", "summary.md", "index.html", "history.jsonl"):
        assert GRAFANA_PASSWORD not in (broken.junit.parent / name).read_text(), name


@pytest.mark.skipif(chromium() is None, reason=INSTALL_HINT)
def test_html_report_renders_the_broken_hop_red_with_its_evidence(broken, tmp_path):
    page = broken.junit.parent / "index.html"
    source = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", source)  # self-contained
    dom = dump_dom(page, tmp_path)
    by_hop = {hop: state for state, hop in re.findall(r'<g class="hop (\w+)" data-hop="([^"]+)"', dom)}
    assert by_hop[BROKEN_HOP] == "failed", by_hop
    assert by_hop["workstation Prometheus → oke Prometheus (remote_write)"] == "passed"
    assert by_hop["oke Promtail → oke Loki"] == "passed"  # the cluster-label failure names the workstation hop
    # Panels of a fresh proving ground may have no data yet: a `should`, so at worst a warning.
    assert by_hop["oke Grafana → its datasources (Prometheus, Loki)"] in ("passed", "warning")
    assert by_hop["workstation Envoy → workstation Prometheus"] == "unchecked"
    # Four hops per cluster, but the run reaches both clusters by URLs only: no API-server node, so no Kiali arrow
    # to one (the Kiali checks are in the table).
    assert len(by_hop) == 6 and ">API server</text>" not in dom
    assert "FAIL: 1 broken hop, first remote workstation Promtail → oke Loki · " in dom
    assert dom.index('id="verdict"') < dom.index('id="root-causes"') < dom.index("<h2>Topology</h2>")
    assert re.search(r"log propagation \d\.\d\d s", dom)  # the latency on the healthy log hop
    failures = dom[dom.index("<h2>Failures</h2>"):]
    assert f"{BROKEN_HOP}: no canary line after 3 s" in failures and "last observed" in failures
    counts = colour_counts(screenshot(page, tmp_path, "960,900"))
    assert counts[RED] > 100 and counts[GREEN] > 300  # the red arrow and the green ones are on screen


def test_run_model_reads_back_what_the_reports_show(broken):
    run = load_run(broken.junit)
    assert run.verdict == "FAIL"
    assert [c.key for c in run.failed_must] == [CANARY.format("workstation"), "logs::loki cluster label lists every cluster"]
    assert run.clusters == ["oke", "workstation"]
