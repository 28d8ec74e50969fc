"""The optional part kube-state-metrics in the bring-up: on by default, so the plan names it and adds nothing,
unless a values file turned it off."""

from __future__ import annotations

import pytest
import yaml

from conformance.provision import parts as parts_module
from conformance.provision.parts import KSM_SWITCHES, Context, kube_state_metrics
from conformance.core.versions import load_versions
from conformance.core.topology import Part, load_topology
from tests.provision.conftest import TOPOLOGY
from tests.provision.test_parts_plan import kps_installs


def plan(tmp_path, monkeypatch, remote_values: dict | None = None):
    if remote_values is not None:
        path = tmp_path / "kube-prometheus-stack-remote.yaml"
        path.write_text(yaml.safe_dump(remote_values))
        monkeypatch.setattr(parts_module, "VALUES_FILE", {**parts_module.VALUES_FILE, "remote": path})
    ctx = Context(load_topology(TOPOLOGY), load_versions(), lambda name: None, lambda *a, **k: None)
    return kube_state_metrics(Part("kube-state-metrics"), ctx)


def test_the_stacks_values_leave_ksm_on_so_the_part_adds_nothing(tmp_path, monkeypatch):
    install = plan(tmp_path, monkeypatch)
    assert install.values == {} and install.set_json == {} and install.after_primary == []


@pytest.mark.parametrize("values, expected", [
    ({"kubeStateMetrics": {"enabled": False}}, ["kubeStateMetrics.enabled=true"]),
    ({"kube-state-metrics": {"prometheus": {"monitor": {"enabled": False}}}},
     ["kube-state-metrics.prometheus.monitor.enabled=true"]),
    ({"kubeStateMetrics": {"enabled": False}, "kube-state-metrics": {"prometheus": {"monitor": {"enabled": False}}}},
     [f"{s}=true" for s in KSM_SWITCHES]),
])
def test_a_values_file_that_turns_ksm_off_is_overridden_for_that_cluster_only(tmp_path, monkeypatch, values, expected):
    install = plan(tmp_path, monkeypatch, values)
    assert install.set_json == {"workstation": expected}


def test_with_kube_state_metrics_the_dry_run_names_the_part_and_changes_no_install(provision):
    code, plain = provision("up", "--dry-run")
    code_with, out = provision("up", "--dry-run", "--with", "kube-state-metrics")
    assert code == 0 and code_with == 0, out
    assert "optional parts: kube-state-metrics" in out
    assert kps_installs(out.splitlines()) == kps_installs(plain.splitlines())
