"""The conformance run as users meet it: preflight, bad topologies, outcomes in JUnit."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.suite_runner import run_suites, write_topology


def fake_docker(folder: Path, *, engine_up: bool) -> dict[str, str]:
    """A docker executable on PATH whose `docker info` succeeds or fails like the real CLI."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    if engine_up:
        script.write_text("#!/bin/sh\necho '{\"ServerVersion\": \"28.2.2\"}'\n")
    else:
        script.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                          "Is the docker daemon running?' >&2\nexit 1\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_kind_topology_without_docker_fails_fast_with_the_ways_forward(tmp_path):
    run = run_suites(tmp_path, env=fake_docker(tmp_path, engine_up=False))
    assert run.code == 4  # ERROR: the preflight stopped the run
    assert run.seconds < 30
    run.assert_no_traceback()
    assert "Docker engine not reachable (Cannot connect to the Docker daemon" in run.output
    assert "provider: existing" in run.output and "provider: endpoints" in run.output
    assert list(run.cases()) == ["platform::preflight[kind]"]  # nothing else ran
    assert run.properties("platform::preflight[kind]")["outcome"] == "precondition"
    assert "start a Docker engine" in run.failure("platform::preflight[kind]")


def test_kind_topology_with_docker_passes_preflight_then_needs_the_clusters(tmp_path):
    empty_kubeconfig = tmp_path / "kubeconfig"
    empty_kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    env = {**fake_docker(tmp_path, engine_up=True), "KUBECONFIG": str(empty_kubeconfig)}
    run = run_suites(tmp_path, "-m", "metrics", env=env)
    cases = run.cases()
    assert "failure" not in {child.tag for child in cases["platform::preflight[kind]"]}
    case = "suites.test_metrics::test_primary_accepts_remote_write"
    assert run.skip_reason(case) == (f"not run: needs oke API server: kubeconfig context 'kind-oke' not found in "
                                     f"{empty_kubeconfig} (it has: none)")
    assert run.properties(case)["outcome"] == "skipped"
    assert run.code == 5  # INCOMPLETE: no access says nothing of the stack
    run.assert_no_traceback()


@pytest.mark.parametrize("text,words", [
    ("clusters:\n  - {name: oke, role: primary, provider: nope}", "unknown provider 'nope'"),
    ("clusters:\n  - {name: oke, role: remote, provider: kind}", "no cluster has role: primary"),
])
def test_a_bad_topology_is_one_error_line_and_no_traceback(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    run = run_suites(tmp_path, "--topology", str(path))
    assert run.code == 4  # pytest's usage-error exit code
    assert f"ERROR: topology {path}: " in run.output and words in run.output
    assert "Traceback" not in run.output


def test_a_missing_topology_file_is_named(tmp_path):
    run = run_suites(tmp_path, "--topology", str(tmp_path / "prod.yaml"))
    assert run.code == 4
    assert f"topology {tmp_path / 'prod.yaml'}: file not found" in run.output


def test_endpoints_topology_runs_against_real_prometheus(tmp_path, prometheus_pair):
    topo = write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": prometheus_pair.primary.url}},
        {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"prometheus": prometheus_pair.remote.url}},
    ])
    run = run_suites(tmp_path, "--topology", str(topo), "-m", "metrics")
    assert run.code == 0, run.output
    assert "platform::preflight[kind]" not in run.cases()


def test_disabled_receiver_fails_at_once_with_the_setting_that_fixes_it(tmp_path, prometheus_pair):
    # The remote of the pair runs without the receiver: use it as a primary.
    topo = write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": prometheus_pair.remote.url}},
    ])
    run = run_suites(tmp_path, "--topology", str(topo), "-m", "metrics")
    case = "suites.test_metrics::test_primary_accepts_remote_write"
    failure = run.failure(case)
    assert run.code == 1
    assert "remote Prometheus → oke Prometheus: the remote-write receiver is disabled" in failure
    assert "prometheus.prometheusSpec.enableRemoteWriteReceiver" in failure
    assert "remote write receiver needs to be enabled" in failure  # the server's own words as evidence
    assert run.properties(case)["outcome"] == "precondition"


def test_read_only_uses_flags_and_sends_no_write(tmp_path, prometheus_pair):
    topo = write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": prometheus_pair.remote.url}},
    ])
    run = run_suites(tmp_path, "--topology", str(topo), "-m", "metrics", "--read-only")
    failure = run.failure("suites.test_metrics::test_primary_accepts_remote_write")
    assert "flag web.enable-remote-write-receiver=false" in failure
