"""After the remote secret, `up` waits until istiod reports the remote `synced` (issue 22, item 5)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.provision import run
from conformance.provision.commands import Kube
from conformance.provision.phases.mesh import remote_cluster_state, remote_synced_step
from conformance.provision.clusters import State
from conformance.provision.run import Runner, StepFailed
from conformance.provision.steps import Step
from conformance.core.topology import load_topology
from tests.provision.conftest import TOPOLOGY

# istioctl 1.29.6 remote-clusters with two istiods, as istioctl/pkg/proxyconfig/clusters.go prints it.
TWO_ISTIODS = """\
NAME            SECRET                                           STATUS      ISTIOD
oke                                                              synced      istiod-6c8f9d7b5-x7k2p
workstation     istio-system/istio-remote-secret-workstation     synced      istiod-6c8f9d7b5-x7k2p
oke                                                              synced      istiod-6c8f9d7b5-q9w4z
workstation     istio-system/istio-remote-secret-workstation     timeout     istiod-6c8f9d7b5-q9w4z
"""


def synced_step(fakebin, tmp_path: Path) -> Step:
    """The plan's wait for the remote, shortened for a test; the remote secret already created."""
    topo = load_topology(TOPOLOGY)
    kube = Kube(topo.primary, State(tmp_path / "cache"))
    (fakebin.dir / "remote-secrets.json").write_text(json.dumps(["workstation"]))
    return replace(remote_synced_step(kube, "workstation"), timeout=1.0, poll=0.01, max_poll=0.05)


def run_step(step: Step, tmp_path: Path) -> Runner:
    runner = Runner({}, tmp_path / "trace.json", out=io.StringIO())
    runner.run([step])
    return runner


def test_the_plan_waits_for_synced_after_applying_each_remote_secret(provision, fakebin):
    code, out = provision("up", "--dry-run")
    assert code == 0, out
    lines = out.splitlines()
    applied = next(i for i, line in enumerate(lines) if "apply workstation's remote secret" in line)
    wait = next(i for i, line in enumerate(lines) if "istiod synced with workstation" in line)
    assert wait > applied, "the wait comes after the secret it waits for"
    assert "istioctl remote-clusters --kubeconfig" in lines[wait + 1] and "--context kind-oke" in lines[wait + 1]
    assert ("timeout 300s (retried, every 1s backing off to 15s); waits for istioctl remote-clusters "
            "to show workstation synced") in lines[wait + 2]


def test_a_remote_syncing_then_synced_passes_on_the_second_look(fakebin, tmp_path):
    (fakebin.dir / "remote-sync.json").write_text(json.dumps(["syncing", "synced"]))
    runner = run_step(synced_step(fakebin, tmp_path), tmp_path)
    assert runner.records[0].attempts == 2 and runner.records[0].status == "ok"


def test_a_remote_that_never_syncs_fails_at_the_bound_with_the_last_state(fakebin, tmp_path):
    (fakebin.dir / "remote-sync.json").write_text(json.dumps(["syncing"]))
    with pytest.raises(StepFailed) as e:
        run_step(synced_step(fakebin, tmp_path), tmp_path)
    assert e.value.where == "mesh oke: istiod synced with workstation"
    assert e.value.diagnosis.startswith("not ready after 1s (")
    assert e.value.diagnosis.endswith("last: istioctl remote-clusters shows workstation syncing on istiod-6c8f9d7b5-x7k2p)")


def test_a_remote_istiod_never_read_is_named_as_not_listed(fakebin, tmp_path):
    step = synced_step(fakebin, tmp_path)
    (fakebin.dir / "remote-secrets.json").unlink()
    with pytest.raises(StepFailed, match="shows workstation not listed \\(istiod has not read its remote secret yet\\)"):
        run_step(step, tmp_path)


def test_every_istiod_must_report_the_remote_synced():
    assert remote_cluster_state(TWO_ISTIODS, "workstation") == "timeout on istiod-6c8f9d7b5-q9w4z"
    assert remote_cluster_state(TWO_ISTIODS.replace("timeout", "synced "), "workstation") == "synced"
    assert remote_cluster_state("Error: unable to find any Istiod instances\n", "workstation").startswith(
        "not listed (no NAME ... STATUS table")


def test_a_retried_wait_backs_off_to_its_ceiling(tmp_path, monkeypatch):
    now = [0.0]
    pauses: list[float] = []
    fake_time = SimpleNamespace(sleep=lambda s: (pauses.append(s), now.__setitem__(0, now[0] + s)))
    monkeypatch.setattr(run, "time", fake_time)  # the runner's pauses only, not subprocess's own
    runner = Runner({}, tmp_path / "trace.json", out=io.StringIO(), clock=lambda: now[0])
    step = Step("mesh", "oke", "never", ("true",), timeout=40, retry=True, poll=1, max_poll=8,
                ready=lambda out: False, state=lambda out: "still nothing")
    with pytest.raises(StepFailed, match=r"last: still nothing\)$"):
        runner.run([step])
    assert pauses[:6] == [1, 2, 4, 8, 8, 8]
