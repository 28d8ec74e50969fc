"""The verdict as a gate (issue 16): PASS, FAIL, INCOMPLETE and ERROR, each with its exit status, its reports and its
history line however the run ends; bad input refused in one line before anything runs; the root cause first."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from conformance.reports.model import EXIT_CODES
from tests.browser import INSTALL_HINT, chromium, dump_dom
from tests.proving_stack import GRAFANA_PASSWORD, GRAFANA_PASSWORD_ENV, start_stack
from tests.suite_runner import REPO, SuiteRun, run_suites, write_topology

RECEIVER = "suites.test_metrics::test_primary_accepts_remote_write"


def last_history(folder: Path) -> dict:
    return json.loads((folder / "history.jsonl").read_text().splitlines()[-1])


def summary_first_line(folder: Path) -> str:
    return (folder / "summary.md").read_text().splitlines()[0]


def prometheus_only(tmp_path: Path, url: str, **extra) -> Path:
    return write_topology(tmp_path, [{"name": "oke", "role": "primary", "provider": "endpoints",
                                      "services": {"prometheus": url}, **extra}])


def assert_gate(run: SuiteRun, verdict: str, *words: str) -> None:
    """The exit status, the console's closing block, summary.md, index.html and the history all say the verdict."""
    folder = run.junit.parent
    assert run.code == EXIT_CODES[verdict], run.output[-3000:]
    assert summary_first_line(folder).startswith("## Conformance: ") and f" {verdict}: " in summary_first_line(folder)
    assert f'<div class="verdict {verdict}" id="verdict">{verdict}: ' in (folder / "index.html").read_text()
    assert last_history(folder)["verdict"] == verdict
    for word in words:
        assert word in run.output, f"{word!r} not in\n{run.output[-3000:]}"
    run.assert_no_traceback()


def test_pass_needs_a_check_that_ran_and_every_must_passing(tmp_path, prometheus_pair):
    topo = write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": prometheus_pair.primary.url}},
        {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"prometheus": prometheus_pair.remote.url}},
    ])
    run = run_suites(tmp_path, "--topology", str(topo), "-m", "metrics")
    assert_gate(run, "PASS", "PASS: every selected must check passed · ")


def test_fail_names_the_broken_hop_first(tmp_path, prometheus_pair):
    topo = prometheus_only(tmp_path, prometheus_pair.remote.url)  # the remote of the pair has no receiver
    run = run_suites(tmp_path, "--topology", str(topo), "-m", "metrics")
    assert_gate(run, "FAIL", "FAIL: 1 broken hop, first remote Prometheus → oke Prometheus · ",
                "1. remote Prometheus → oke Prometheus: the remote-write receiver is disabled")


def test_nothing_observed_is_incomplete_naming_each_service_it_could_not_observe(tmp_path, prometheus_pair):
    """The issue's run: Prometheus only, `-m "kiali or dashboards"`: every check skipped used to say PASS."""
    topo = prometheus_only(tmp_path, prometheus_pair.primary.url)
    run = run_suites(tmp_path, "--topology", str(topo), "-m", "kiali or dashboards")
    assert_gate(run, "INCOMPLETE", "INCOMPLETE: no check ran · ",
                "- oke Kiali: not in the topology (provider endpoints lists no services.kiali; declare it with absent: [kiali]",
                "- oke Grafana: not in the topology (provider endpoints lists no services.grafana; declare it with absent: [grafana]")
    summary = (tmp_path / "summary.md").read_text()
    assert "### Not observed" in summary and "oke Kiali: not in the topology" in summary
    assert last_history(tmp_path)["selection"] == {"markers": "kiali or dashboards", "profile": "promtail"}


def test_what_the_topology_declares_absent_is_not_applicable_and_the_rest_passes(tmp_path, prometheus_pair):
    topo = write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": prometheus_pair.primary.url},
         "absent": ["kiali", "grafana"]},
        {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"prometheus": prometheus_pair.remote.url}},
    ])
    run = run_suites(tmp_path, "--topology", str(topo), "-m", "metrics or kiali or dashboards")
    assert_gate(run, "PASS", " not applicable · exit 0")
    skipped = {case: run.properties(case)["outcome"] for case in run.names() if run.properties(case)["outcome"] != "passed"}
    assert skipped and set(skipped.values()) == {"not_applicable"}, skipped
    assert run.skip_reason("kiali::kiali lists namespaces of the cluster[oke]") == (
        f"oke Kiali: declared absent (topology {topo}: absent: [kiali])")
    # Declared absent, nothing else selected: nothing was observed, which is no PASS either.
    only = run_suites(tmp_path, "--topology", str(topo), "-m", "kiali or dashboards")
    assert_gate(only, "INCOMPLETE", "INCOMPLETE: no check ran · ")


def test_a_misspelled_marker_is_refused_in_one_line_and_the_reports_say_error(tmp_path):
    topo = prometheus_only(tmp_path, "http://127.0.0.1:9")
    (tmp_path / "index.html").write_text("an earlier run's report")  # must not survive as this run's
    run = run_suites(tmp_path, "--topology", str(topo), "-m", "log or metrics")
    assert_gate(run, "ERROR", "ERROR: -m 'log or metrics': unknown marker 'log' (did you mean 'logs'?)")
    assert len([line for line in run.output.splitlines() if line.strip()]) == 1, run.output
    assert "an earlier run" not in (tmp_path / "index.html").read_text()
    assert last_history(tmp_path)["error"].startswith("arguments: -m 'log or metrics': unknown marker 'log'")


@pytest.mark.parametrize("args,words", [
    (["--timeout-scale", "-1"], "--timeout-scale -1.0: timeout scale must be positive"),
    (["--with", "kube-bench-typo"], "--with kube-bench-typo: unknown part; expected one of alerting, "),
    (["--profile", "vector"], "profile 'vector': unknown; expected one of promtail, alloy, vector-opensearch"),
])
def test_bad_options_are_refused_in_one_line_and_the_reports_say_error(tmp_path, args, words):
    run = run_suites(tmp_path, "--topology", str(prometheus_only(tmp_path, "http://127.0.0.1:9")), *args)
    assert_gate(run, "ERROR", words)
    assert last_history(tmp_path)["verdict"] == "ERROR"


def test_a_topology_error_writes_every_report_and_a_history_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("clusters:\n  - {name: oke, role: primary, provider: minikube}\n")
    run = run_suites(tmp_path, "--topology", str(path), "-m", "metrics")
    assert_gate(run, "ERROR", f"ERROR: topology {path}: clusters[0] (oke).provider: unknown provider 'minikube'")
    line = last_history(tmp_path)
    assert line["topology"] == str(path) and line["selection"] == {"markers": "metrics"}


# -- the whole run, as `nox -s conformance` starts it -------------------------------------------------------------


def recording_tools(folder: Path) -> tuple[dict[str, str], Path]:
    """docker, kind, kubectl, helm and istioctl on PATH that only write down that they were called."""
    bin_dir, calls = folder / "bin", folder / "calls.log"
    bin_dir.mkdir()
    for tool in ("docker", "kind", "kubectl", "helm", "istioctl"):
        script = bin_dir / tool
        script.write_text(f"#!/bin/sh\necho {tool} \"$@\" >> {calls}\nexit 1\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, calls


def conformance(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, Path]:
    """`python -m conformance ARGS` with its reports in a folder of the test's own."""
    reports = tmp_path / "reports"
    code = ("import sys; from pathlib import Path; from conformance.cli import Run, split_arguments; "
            f"sys.exit(Run(split_arguments(sys.argv[1:]), reports=Path({str(reports)!r})).main())")
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})
    return done.returncode, done.stdout + done.stderr, reports


@pytest.mark.parametrize("args,words", [
    (["-m", "log"], "ERROR: arguments: -m 'log': unknown marker 'log' (did you mean 'logs'?)"),
    (["--timeout-scale", "-1"], "ERROR: arguments: --timeout-scale -1.0: timeout scale must be positive"),
    (["--no-such-option"], "ERROR: arguments: "),
    (["--with", "nope"], "ERROR: topology: --with nope: unknown part"),
])
def test_every_argument_is_read_before_a_kind_bring_up(tmp_path, args, words):
    """With the default kind topology, a bad argument ends the run in seconds: no docker, kind or helm is called."""
    env, calls = recording_tools(tmp_path)
    code, output, reports = conformance(tmp_path, *args, env=env)
    assert code == EXIT_CODES["ERROR"], output
    assert words in output, output
    assert not calls.exists(), calls.read_text()
    assert "Traceback" not in output
    assert json.loads((reports / "history.jsonl").read_text().splitlines()[-1])["verdict"] == "ERROR"
    assert (reports / "summary.md").read_text().startswith("## Conformance: ⛔ ERROR: ")


def test_help_lists_the_suites_own_options_and_touches_nothing(tmp_path):
    env, calls = recording_tools(tmp_path)
    code, output, reports = conformance(tmp_path, "--help", env=env)
    assert code == 0, output
    for option in ("--topology=PATH", "--read-only", "--timeout-scale", "--with=PART", "--keep", "--preload"):
        assert option in output, option
    assert not calls.exists() and not reports.exists()


def test_markers_lists_each_marker_with_its_meaning_and_brings_nothing_up(tmp_path):
    """`--markers` with the default kind topology: the suite's markers, one line each, and no docker, kind or helm."""
    env, calls = recording_tools(tmp_path)
    code, output, reports = conformance(tmp_path, "--markers", env=env)
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].startswith("The suite's markers: -m EXPR runs the checks they mark"), output
    for line in ("  logs: Promtail -> Loki checks", "  metrics: Prometheus and remote_write checks",
                 "  kube_state_metrics: kube-state-metrics scraped and describing the canary pod (optional part "
                 "kube-state-metrics)",
                 "  writes: the check writes to the system under test; skipped under --read-only"):
        assert line in lines, line
    bench = next(line for line in lines if line.startswith("  kube_bench: "))
    assert bench.endswith("(optional part kube-bench) (also: kubebench)"), bench
    assert not any(line.startswith(("  skipif", "  @pytest.mark.skipif", "@pytest")) for line in lines), output
    assert not calls.exists() and not reports.exists()


def test_a_part_and_its_marker_answer_to_the_name_without_the_hyphen(tmp_path, prometheus_pair):
    """`--with kubebench -m kubebench` is `--with kube-bench -m kube_bench`: the same part, the same checks."""
    topo = prometheus_only(tmp_path, prometheus_pair.primary.url)
    run = run_suites(tmp_path, "--topology", str(topo), "--with", "kubebench", "-m", "kubebench")
    assert "optional parts: kube-bench (interval: 1h)" in run.output, run.output[-3000:]
    assert run.names() and all(name.startswith("kube_bench::") for name in run.names()), run.names()
    assert {run.properties(name)["outcome"] for name in run.names()} - {"not_applicable"}, "the part's checks ran"
    assert last_history(tmp_path)["selection"]["markers"] == "kube_bench"


def test_checks_of_parts_the_topology_lacks_are_one_console_line_unless_rs(tmp_path, prometheus_pair):
    """Each not applicable check is counted in one line of the closing block, by reason; pytest's SKIPPED line per
    check comes only when asked for (-rs)."""
    topo = write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": prometheus_pair.primary.url}},
        {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"prometheus": prometheus_pair.remote.url}},
    ])
    run = run_suites(tmp_path, "--topology", str(topo), "-m", "metrics or kubebench or events")
    cases = {name: run.properties(name)["outcome"] for name in run.names()}
    bench = [n for n, outcome in cases.items() if n.startswith("kube_bench::") and outcome == "not_applicable"]
    events = [n for n, outcome in cases.items() if n.startswith("events::") and outcome == "not_applicable"]
    assert bench and events, cases
    closing = [line for line in run.output.splitlines() if line.startswith("Not applicable: ")]
    metrics = [n for n in cases if n.startswith("metrics::")]
    assert len(closing) == 1 and {cases[n] for n in metrics} == {"passed"}, run.output[-3000:]
    assert len(bench) + len(events) + len(metrics) == len(cases), cases
    head, counted = closing[0].split(" — parts the topology does not list: ")
    assert head == f"Not applicable: {len(bench) + len(events)} checks"
    assert counted == f"kube-bench {len(bench)}, events {len(events)}", closing  # most first
    assert "SKIPPED" not in run.output, run.output[-3000:]
    assert closing[0] in (tmp_path / "summary.md").read_text().splitlines()  # the step summary says it the same way
    asked = run_suites(tmp_path, "--topology", str(topo), "-m", "metrics or kubebench or events", "-rs")
    skipped = [line for line in asked.output.splitlines() if line.startswith("SKIPPED")]
    # pytest folds the same check's skips on every cluster into one line: SKIPPED [2] suites/test_events.py:31: ...
    assert sum(int(re.match(r"SKIPPED \[(\d+)\]", line)[1]) for line in skipped) == len(bench) + len(events), skipped
    assert any("kube-bench is not a part of this stack" in line for line in skipped), skipped


def test_a_bring_up_that_fails_writes_every_report_with_the_phase(tmp_path):
    env, calls = recording_tools(tmp_path)  # docker info fails: the preflight stops the bring-up
    code, output, reports = conformance(tmp_path, "-m", "metrics", env=env)
    assert code == EXIT_CODES["ERROR"], output
    assert "ERROR: bring-up (preflight): Docker engine not reachable" in output, output
    line = json.loads((reports / "history.jsonl").read_text().splitlines()[-1])
    assert line["verdict"] == "ERROR" and line["error"].startswith("bring-up (preflight): ")
    assert line["selection"] == {"markers": "metrics"}
    assert "Traceback" not in output


# -- the root cause first ----------------------------------------------------------------------------------------


@pytest.fixture
def html_404() -> Iterator[str]:
    """A web server that answers every path with an HTML 404 page (a wrong URL behind an ingress)."""
    page = b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1>" + b"x" * 5000

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's names
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        do_POST = do_GET

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/prometheus"
    server.shutdown()


def test_a_wrong_prometheus_url_is_the_first_root_cause_with_its_dependents_counted(tmp_path, prometheus_pair, html_404):
    with start_stack(tmp_path, prometheus_pair) as stack:
        path = stack.topology()
        doc = yaml.safe_load(path.read_text())
        doc["clusters"][0]["services"]["prometheus"] = html_404
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        run = run_suites(tmp_path, "--topology", str(path), "-m", "metrics or platform or logs",
                         "--timeout-scale", "0.2", env={GRAFANA_PASSWORD_ENV: GRAFANA_PASSWORD}, timeout=300)
    assert_gate(run, "FAIL")
    summary = (tmp_path / "summary.md").read_text()
    causes = summary.split("### Root causes\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    first = causes[0]
    assert first.startswith("1. conformance → oke Prometheus: GET /prometheus/"), summary
    assert 'answered 404: an HTML page "404 Not Found"' in first, first
    assert "checks failed on it" in first and "x" * 200 not in summary  # the page itself stays in the JUnit text
    assert all(len(line) < 400 for line in causes), causes
    index = (tmp_path / "index.html").read_text()
    # The remote's hop to the primary was not tested (its checks need the primary's Prometheus): grey, not red.
    assert '<g class="hop skipped" data-hop="workstation Prometheus → oke Prometheus (remote_write)"' in index
    if chromium() is None:
        pytest.skip(INSTALL_HINT)
    # At 1400 px wide the verdict and the root causes are on the first screen: measured in the page as laid out.
    probe = tmp_path / "probe.html"
    probe.write_text(index.replace("</body>", """<script>
      const box = (id) => document.getElementById(id).getBoundingClientRect();
      document.body.dataset.verdictTop = box("verdict").top;
      document.body.dataset.causesBottom = box("root-causes").bottom;
    </script></body>"""))
    dom = dump_dom(probe, tmp_path, "--window-size=1400,900")
    top = float(dom.split('data-verdict-top="', 1)[1].split('"', 1)[0])
    bottom = float(dom.split('data-causes-bottom="', 1)[1].split('"', 1)[0])
    assert 0 < top < bottom <= 900, (top, bottom)
