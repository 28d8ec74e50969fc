"""Fast, exact verdicts (issue 10): one broken hop at a time, the whole `-m "logs or metrics"` run.

Each fault of the issue's table runs against the real Prometheus pair and the Loki / Promtail fakes. Every
case asserts the outcome kind, that the headline names the hop and the true cause, and that the whole run
ends within the budget (15 s for a hop that cannot recover), with headroom for a loaded machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml

from conformance.core import hopboard
from conformance.core.access import Access
from conformance.probes.metrics.remote_write import LogSource, describe_last_error, last_send_error, snapshot_from_metrics
from conformance.core.topology import load_topology
from conformance.probes.metrics.remote_write.watch import sender_log
from tests import web
from tests.fakes.kubeapi import FakeKubeAPI
from tests.proving_ground import PrometheusPair, PrometheusProcess, free_port, start_prometheus
from tests.proving_stack import GRAFANA_PASSWORD, GRAFANA_PASSWORD_ENV, ProvingStack, start_stack
from tests.suite_runner import SuiteRun, run_suites, write_topology
from tests.test_hopboard import CONFTEST, REPO

BUDGET = 15.0  # seconds: the budget for a hop that cannot recover, whole run included
HEADROOM = 1.5  # the self-tests share two cores with other runs; a quiet machine stays under BUDGET

READY_LOKI = "logs::primary loki is ready"
CANARY = "logs::log canary reaches the primary loki[{}]"
LABELS = "logs::loki cluster label lists every cluster"
DISCARDS = "logs::loki discards nothing"
ACCEPTS = "metrics::primary accepts remote write"
SERIES = "metrics::remote series reach the primary[workstation]"
FRESH = "metrics::remote series are fresh[workstation]"
SENDER = "metrics::remote write sender is healthy[workstation]"
REMOTE_WRITE = "workstation Prometheus → oke Prometheus (remote_write)"


def counter(process: PrometheusProcess, name: str) -> float:
    """One remote-storage counter of a real Prometheus, summed over its queues (plain text, for setting up)."""
    text = web.get(f"{process.url}/metrics", timeout=5).text
    return sum(float(v) for v in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", text, re.MULTILINE))


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not established after {timeout} s: {what}")
        time.sleep(0.2)


@dataclass
class Fault:
    """One broken hop: how to break it, and what each case of the run must say."""

    name: str
    receiver: bool = True
    refused_remote_write: bool = False
    promtail_labels: dict[str, dict[str, str]] | None = None
    loki_down: bool = False
    expect: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # case -> (outcome, headline parts)


FAULTS = [
    Fault("remote Promtail labels cluster=workstatoin", promtail_labels={"workstation": {"cluster": "workstatoin"}},
          expect={
              CANARY.format("workstation"): ("failed", [
                  "remote workstation Promtail → oke Loki: the canary line arrived with cluster=workstatoin, "
                  "not cluster=workstation"]),
              # Stopped at once, naming the canary, instead of waiting its 60 s for a value that cannot come.
              LABELS: ("blocked", [
                  "not run: needs remote workstation Promtail → oke Loki: the canary line arrived with "
                  "cluster=workstatoin", "(found by log canary reaches the primary loki[workstation])"]),
              CANARY.format("oke"): ("passed", []), SERIES: ("passed", []),
          }),
    Fault("primary Prometheus without the remote-write receiver", receiver=False, expect={
        ACCEPTS: ("precondition", ["remote Prometheus → oke Prometheus: the remote-write receiver is disabled; "
                                   "set prometheus.prometheusSpec.enableRemoteWriteReceiver: true"]),
        SERIES: ("blocked", ["not run: needs remote Prometheus → oke Prometheus: the remote-write receiver is "
                             "disabled", "(found by primary accepts remote write)"]),
        FRESH: ("blocked", ["the remote-write receiver is disabled", "(found by primary accepts remote write)"]),
        # 404 is not recoverable: those samples are failed, not retried (queue_manager.go updateMetrics).
        SENDER: ("failed", [f"{REMOTE_WRITE}: in ", "samples failed to http://127.0.0.1:",
                            "server returned HTTP status 404 Not Found"]),
    }),
    Fault("remote Prometheus remote_writes to a port where nothing listens", refused_remote_write=True, expect={
        SENDER: ("failed", [f"{REMOTE_WRITE}: nothing delivered yet to http://127.0.0.1:",
                            "; the sender is retrying (", " samples retried, ",
                            "last error: Post \"http://127.0.0.1:", "connect: connection refused"]),
        SERIES: ("blocked", [f"not run: needs {REMOTE_WRITE}: nothing delivered yet",
                             "(found by remote write sender is healthy[workstation])"]),
        FRESH: ("blocked", ["nothing delivered yet", "connection refused"]),
        ACCEPTS: ("passed", []),
    }),
    Fault("primary Loki down", loki_down=True, expect={
        READY_LOKI: ("timed_out", ["conformance → oke Loki: oke Loki still unreachable when the wait ended after 3 s: "
                                   "connection refused"]),
        **{case: ("blocked", ["not run: needs conformance → oke Loki: oke Loki still unreachable",
                              "(found by primary loki is ready)"])
           for case in (CANARY.format("oke"), CANARY.format("workstation"), LABELS, DISCARDS)},
        SERIES: ("passed", []),
    }),
    Fault("healthy", expect={case: ("passed", []) for case in (READY_LOKI, CANARY.format("oke"),
                                                               CANARY.format("workstation"), LABELS, SERIES, FRESH)}),
]


def topology_with_sender_log(stack: ProvingStack, remote: PrometheusProcess) -> Path:
    """The stack's endpoints topology, with the remote Prometheus's own log as its prometheus_log."""
    path = stack.topology()
    doc = yaml.safe_load(path.read_text())
    for cluster in doc["clusters"]:
        if cluster["name"] == "workstation":
            cluster["prometheus_log"] = {"file": str(remote.log_path)}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def break_and_run(tmp_path: Path, fault: Fault) -> SuiteRun:
    with ExitStack() as cleanup:
        primary = start_prometheus("primary", tmp_path / "p", cluster="oke", receiver=fault.receiver)
        cleanup.callback(primary.stop)
        url = f"http://127.0.0.1:{free_port()}/api/v1/write" if fault.refused_remote_write else f"{primary.url}/api/v1/write"
        remote = start_prometheus("remote", tmp_path / "r", cluster="workstation", remote_write_url=url)
        cleanup.callback(remote.stop)
        pair = PrometheusPair(primary, remote)
        # The fault is in place before the run starts, as on a stack that has been running for a while.
        if fault.refused_remote_write:
            wait_for(lambda: counter(remote, "prometheus_remote_storage_samples_retried_total") > 0, "retries")
        elif not fault.receiver:
            wait_for(lambda: counter(remote, "prometheus_remote_storage_samples_failed_total") > 0, "rejected sends")
        else:
            pair.wait_until_remote_arrives(timeout=60)
        if not fault.refused_remote_write:
            remote.wait_for_own_past()  # the sender check reads the window that just ended, as on a running stack
        stack = cleanup.enter_context(start_stack(tmp_path, pair, promtail_labels=fault.promtail_labels))
        topology = topology_with_sender_log(stack, remote)
        if fault.loki_down:
            stack.loki.stop()
        return run_suites(tmp_path, "--topology", str(topology), "-m", "logs or metrics",
                          env={GRAFANA_PASSWORD_ENV: GRAFANA_PASSWORD}, timeout=300)


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_each_broken_hop_gets_its_exact_verdict_within_the_budget(tmp_path, fault, record_property):
    run = break_and_run(tmp_path, fault)
    record_property("verdict_seconds", round(run.suite_seconds, 1))
    for case, (outcome, parts) in fault.expect.items():
        failure = run.failure(case)
        assert run.properties(case)["outcome"] == outcome, f"{case}: {failure}\n{run.output[-3000:]}"
        for part in parts:
            assert part in failure, f"{case}: {part!r} not in\n{failure}"
    failures = "\n".join(run.failure(case) for case in run.names())
    assert not re.search(r"\b\d{7,} s\b", failures)  # no lag from a zero timestamp ("grew from 1796152240 s")
    assert "and none failed" not in failures  # samples_total counts attempts, not deliveries
    run.assert_no_traceback()
    if fault.name == "healthy":
        assert run.code == 0, run.output[-3000:]
        return
    assert run.code == 1, run.output[-3000:]
    assert run.suite_seconds < BUDGET * HEADROOM, f"{run.suite_seconds:.1f} s\n{run.output[-3000:]}"


def test_a_real_sender_retrying_a_refused_url_reads_as_never_delivered(tmp_path):
    """Prometheus' own counters and log for a remote_write URL that refuses connections, read right."""
    url = f"http://127.0.0.1:{free_port()}/api/v1/write"
    remote = start_prometheus("remote", tmp_path / "r", cluster="workstation", remote_write_url=url)
    try:
        wait_for(lambda: counter(remote, "prometheus_remote_storage_samples_retried_total") > 0, "retries")
        snap = snapshot_from_metrics(web.get(f"{remote.url}/metrics", timeout=5).text)
        log = remote.log_text()
    finally:
        remote.stop()
    queue = snap.queues[url]
    assert queue.retried > 0 and queue.failed == 0  # recoverable: retried forever, never counted failed
    assert queue.attempted > 0  # samples_total counts attempts: it is not evidence of delivery
    assert queue.never_sent and queue.retrying_undelivered and queue.remote_name
    assert snap.lag(queue) is None  # never a lag from the zero timestamp
    error = last_send_error(log, url)
    assert error is not None and error.startswith(f'Post "{url}": dial tcp 127.0.0.1:') and "connection refused" in error
    assert describe_last_error(LogSource(lambda: log), url) == error
    assert describe_last_error(pod_log_of(tmp_path, log), url) == error  # the same, read from the pod
    assert describe_last_error(LogSource(None, "cluster workstation has provider endpoints and no prometheus_log file"),
                               url) == "not visible (cluster workstation has provider endpoints and no prometheus_log file)"


def test_a_delivering_sender_has_a_lag_from_its_own_timestamps(prometheus_pair):
    prometheus_pair.wait_until_remote_arrives(timeout=60)
    snap = snapshot_from_metrics(web.get(f"{prometheus_pair.remote.url}/metrics", timeout=5).text)
    (queue,) = snap.queues.values()
    assert not queue.never_sent and not queue.retrying_undelivered
    lag = snap.lag(queue)
    assert lag is not None and 0 <= lag < 30  # seconds behind its own newest sample, not since 1970


def pod_log_of(tmp_path: Path, log: str) -> LogSource:
    """The suite's source for the remote's Prometheus log on a cluster with Kubernetes access, its pod seeded with log.

    prometheus-operator v0.93 labels the pod app.kubernetes.io/name=prometheus and names the container prometheus
    (pkg/prometheus/server/operator.go, statefulset.go); the config-reloader beside it logs nothing of remote write.
    """
    api = FakeKubeAPI("workstation").start()
    api.add_pod("monitoring", "prometheus-kube-prometheus-stack-prometheus-0",
                labels={"app.kubernetes.io/name": "prometheus"},
                containers=[{"name": "config-reloader", "image": "reloader"}, {"name": "prometheus", "image": "prom"}],
                logs={"config-reloader": "level=info msg=reloaded\n", "prometheus": log})
    api.write_kubeconfig(tmp_path / "kubeconfig")
    topology = load_topology(str(write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "existing", "context": "kind-workstation",
         "kubeconfig": str(tmp_path / "kubeconfig")},
        {"name": "workstation", "role": "remote", "provider": "existing", "context": "kind-workstation",
         "kubeconfig": str(tmp_path / "kubeconfig")}], "kube-topology.yaml")))
    source = sender_log(Access(topology), topology.cluster("workstation"))
    text = source.read()  # read now: the fake stops when this returns
    api.stop()
    return LogSource(lambda: text)


DEPENDENT_FIRST = '''
import pytest
from conformance.core.eventually import NotYet, Wait, eventually
from conformance.core.outcomes import Failed

@pytest.mark.hop("labels", needs=["logs"])
def test_label_values():  # first in the file, but it needs what the canary below judges
    def probe():
        raise NotYet("no value")
    eventually(probe, hop="remote Promtail → Loki", what="no cluster value", wait=Wait(timeout=60))

def test_unrelated():
    pass

@pytest.mark.hop("logs")
def test_canary():
    raise Failed("remote Promtail → Loki", "the canary line arrived under cluster=workstatoin", final=True)
'''


def test_a_check_runs_after_the_checks_that_judge_the_hops_it_needs(tmp_path):
    """Without xdist a dependent can only stop at once if the check that can establish the break ran first."""
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_checks.py").write_text(DEPENDENT_FIRST)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(hopboard.BOARD_ENV, None)
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-p", "no:xdist"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = run.stdout
    assert time.monotonic() - started < 30, out
    order = [line.split("::")[1].split()[0] for line in out.splitlines() if line.startswith("test_checks.py::")]
    assert order == ["test_unrelated", "test_canary", "test_label_values"], out  # otherwise as written
    assert "the canary line arrived under cluster=workstatoin (found by canary)" in out, out
