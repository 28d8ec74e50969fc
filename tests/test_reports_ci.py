"""The nightly workflow users copy: it runs what the README says and keeps the reports whatever happens."""

from __future__ import annotations

from pathlib import Path

import yaml

from conformance.provision.cli import main as provision

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "conformance.yml"


def steps() -> dict[str, dict]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    return {s.get("name") or s["uses"]: s for s in doc["jobs"]["conformance"]["steps"]}


def test_the_gate_runs_the_conformance_session_with_preloaded_images():
    by_name = steps()
    assert by_name["Conformance"]["run"] == "nox -s conformance -- --preload"
    assert "if" not in by_name["Conformance"]  # its exit status is the gate: non-zero when a must check fails
    assert "python -m conformance.provision images" in by_name["Pull and save the pinned images"]["run"]


def test_reports_and_summary_are_kept_even_when_the_gate_fails():
    by_name = steps()
    upload = next(s for n, s in by_name.items() if n.startswith("Upload the reports"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/"
    summary = by_name["Post the summary"]
    assert summary["if"] == "always()" and 'reports/summary.md >> "$GITHUB_STEP_SUMMARY"' in summary["run"]
    assert by_name["Save the run history"]["if"] == "always()"


def test_the_image_list_the_workflow_pulls_is_what_preload_loads(capsys):
    assert provision(["images"]) == 0
    images = capsys.readouterr().out.split()
    assert any(i.startswith("docker.io/istio/proxyv2:") for i in images) and "busybox:1.36.1" in images
