"""history.jsonl after real runs, the table `nox -s report` prints, and how a regression stands out."""

from __future__ import annotations

import json
import subprocess
import sys

from conformance.reports import history
from tests.suite_runner import REPO, run_suites, write_topology


def test_three_runs_leave_three_history_lines_and_a_table(tmp_path, prometheus_pair):
    primary, remote = prometheus_pair.primary.url, prometheus_pair.remote.url
    healthy = write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": primary}},
        {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"prometheus": remote}},
    ])
    # The remote of the pair has no receiver: as a primary it fails remote write at once.
    broken = write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": remote}},
    ], name="broken.yaml")
    codes = [run_suites(tmp_path, "--topology", str(t), "-m", "metrics", "-k", "accepts or fresh").code
             for t in (healthy, broken, healthy)]
    codes.append(run_suites(tmp_path, "--topology", str(healthy), "-m", "metric").code)  # a misspelled marker
    assert codes == [0, 1, 0, 4]
    lines = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [line["verdict"] for line in lines] == ["PASS", "FAIL", "PASS", "ERROR"]
    assert lines[0]["topology"] == str(healthy) and lines[1]["topology"] == str(broken)
    assert lines[0]["selection"] == {"markers": "metrics", "keywords": "accepts or fresh", "profile": "promtail"}
    assert lines[3]["error"].startswith("arguments: -m 'metric': unknown marker 'metric' (did you mean 'metrics'?)")
    assert lines[1]["checks"]["metrics::primary accepts remote write"] == "precondition"
    assert lines[0]["versions"]["pin.istio"] and "suites" in lines[0]["phases"]
    assert 0 <= lines[0]["latencies"]["metrics::remote series are fresh[workstation]|remote_write_sample_age_seconds"] < 5
    table = subprocess.run([sys.executable, "-m", "conformance.reports", "history", "--history",
                            str(tmp_path / "history.jsonl")], cwd=REPO, capture_output=True, text=True, check=True).stdout
    rows = table.splitlines()
    assert rows[0].split()[:6] == ["time", "(UTC)", "verdict", "pass", "fail", "skip"]
    assert [r.split()[2] for r in rows[2:]] == ["PASS", "FAIL", "PASS", "ERROR"]
    assert "failing: metrics::primary accepts remote write" in rows[3]
    assert "topology.yaml" in rows[2] and "broken.yaml" in rows[3]
    assert "keywords=accepts or fresh markers=metrics profile=promtail" in rows[2]
    assert "arguments: -m 'metric': unknown marker" in rows[5]


def line(propagation: float) -> dict:
    return {"time": "2026-11-22T00:00:00+00:00", "verdict": "PASS", "counts": {"passed": 1},
            "latencies": {"logs::log canary reaches the primary loki[workstation]|log_propagation_seconds": propagation},
            "phases": {"suites": 10.0}, "checks": {}}


def test_a_propagation_regression_stands_out():
    runs = [line(0.4), line(0.5), line(0.45), line(3.2)]
    table = history.table(runs)
    assert "↑ log propagation 3.20 s (median 0.45 s)" in table.splitlines()[-1]
    assert "↑" not in "".join(table.splitlines()[:-1])  # noise is not flagged


def test_an_empty_or_damaged_history_reads_as_what_it_has(tmp_path):
    path = tmp_path / "history.jsonl"
    assert history.table(history.read(path)) == "no runs recorded yet\n"
    path.write_text(json.dumps(line(0.4)) + "\n{not json\n")
    assert len(history.read(path)) == 1
