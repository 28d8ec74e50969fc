"""Optional parts in the bring-up: the topology's parts: (or --with) add their values and steps; none adds nothing."""

from __future__ import annotations

import json

import pytest
import yaml

from conformance.core.stack import STACK_DIR
from conformance.core.topology import PARTS
from tests.provision.conftest import TOPOLOGY

ALERTING_VALUES = STACK_DIR / "values" / "kube-prometheus-stack-alerting.yaml"


def topology_with(tmp_path, parts) -> str:
    doc = yaml.safe_load(TOPOLOGY.read_text())
    doc["parts"] = parts
    # The kind configs are found next to the topology file (kind/<name>.yaml).
    for name in ("oke", "workstation"):
        (tmp_path / f"{name}.yaml").write_text((TOPOLOGY.parent / f"{name}.yaml").read_text())
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def kps_installs(commands: list[str]) -> dict[str, str]:
    return {c.split("kind-")[1].split()[0]: c for c in commands
            if c.startswith("helm") and "upgrade --install kube-prometheus-stack" in c}


def test_the_dry_run_of_the_default_topology_names_no_part_and_installs_no_alertmanager(provision):
    code, out = provision("up", "--dry-run")
    assert code == 0, out
    assert f"optional parts: none (add them under parts: in the topology, or --with {','.join(PARTS)})" in out
    assert "kube-prometheus-stack-alerting.yaml" not in out
    assert "Alertmanager" not in out


def test_with_alerting_the_dry_run_shows_the_part_its_values_and_its_steps(provision):
    code, out = provision("up", "--dry-run", "--with", "alerting")
    assert code == 0, out
    assert "optional parts: alerting (remote_alerts: primary)" in out
    primary = next(l for l in out.splitlines() if "upgrade --install kube-prometheus-stack" in l and "kind-oke" in l)
    assert f"--values {ALERTING_VALUES}" in primary
    assert "[stack] oke Alertmanager available" in out
    assert "alertmanager/kube-prometheus-stack-alertmanager --namespace monitoring --for=condition=Available" in out
    assert "[stack] oke address of Alertmanager" in out
    remote = next(l for l in out.splitlines() if "upgrade --install kube-prometheus-stack" in l and "kind-workstation" in l)
    assert "prometheus.prometheusSpec.additionalAlertManagerConfigs=" in remote
    assert "<oke.alertmanager_ip>:9093" in remote  # the primary's MetalLB address, known at run time


def test_remote_alerts_none_gives_the_remote_no_alertmanager(provision, tmp_path):
    code, out = provision("up", "--dry-run", topology=topology_with(tmp_path, {"alerting": {"remote_alerts": "none"}}))
    assert code == 0, out
    assert "optional parts: alerting (remote_alerts: none)" in out
    assert "additionalAlertManagerConfigs" not in out and "address of Alertmanager" not in out
    assert "[stack] oke Alertmanager available" in out


def test_an_unknown_part_is_one_line(provision):
    code, out = provision("up", "--dry-run", "--with", "alerts")
    assert code == 2
    assert out.strip() == f"error: --with alerts: unknown part; expected one of {', '.join(PARTS)}"


def test_up_with_alerting_runs_the_steps_in_order_against_the_fakes(provision, fakebin, tmp_path):
    code, out = provision("up", topology=topology_with(tmp_path, ["alerting"]))
    assert code == 0, out
    commands = fakebin.commands()
    installs = kps_installs(commands)
    assert f"--values {ALERTING_VALUES}" in installs["oke"]
    assert f"--values {ALERTING_VALUES}" not in installs["workstation"]
    wait = next(i for i, c in enumerate(commands) if "wait alertmanager/kube-prometheus-stack-alertmanager" in c)
    address = next(i for i, c in enumerate(commands) if "get service kube-prometheus-stack-alertmanager" in c)
    remote = next(i for i, c in enumerate(commands) if c == installs["workstation"])
    assert wait < address < remote
    (sets,) = [a for a in next(c["argv"] for c in fakebin.calls() if " ".join([c["tool"], *c["argv"]]) == installs["workstation"])
               if a.startswith("prometheus.prometheusSpec.additionalAlertManagerConfigs=")]
    configs = json.loads(sets.split("=", 1)[1])
    (target,) = configs[0]["static_configs"][0]["targets"]
    assert target.endswith(":9093") and "@{" not in target  # filled with the address MetalLB gave


@pytest.mark.parametrize("key", ["alertmanager"])
def test_the_overlay_sets_only_alertmanager_keys(key):
    doc = yaml.safe_load(ALERTING_VALUES.read_text())
    assert list(doc) == [key]
    assert doc["alertmanager"]["enabled"] is True


def test_nox_conformance_gives_with_to_both_the_bring_up_and_the_suites():
    from conformance.cli import split_arguments
    args = split_arguments(["--with", "alerting", "-m", "alerting", "--keep"])
    assert args.bringup == ["--with", "alerting", "--keep"]
    assert args.pytest == ["--with=alerting", "-m", "alerting"]


APP = STACK_DIR / "app"


def test_with_app_metrics_the_dry_run_adds_the_app_and_its_servicemonitor_on_every_cluster(provision):
    code, out = provision("up", "--dry-run", "--with", "app-metrics")
    assert code == 0, out
    assert "optional parts: app-metrics" in out
    lines = out.splitlines()
    for cluster in ("oke", "workstation"):
        step = next(i for i, l in enumerate(lines) if f"[app] {cluster} app-metrics: example-app, its Service and ServiceMonitor" in l)
        command = lines[step + 1]
        assert f"--filename {APP / 'example-app.yaml'} --filename {APP / 'example-app-servicemonitor.yaml'}" in command
        # The port-level PERMISSIVE policy is Istio configuration: the primary's istiod reads it for every cluster.
        assert (f"--filename {APP / 'example-app-mtls.yaml'}" in command) == (cluster == "oke")
        assert f"[app] {cluster} example-app Ready" in out
    sample_app = next(i for i, l in enumerate(lines) if "[app] workstation sample app (injected namespace)" in l)
    assert sample_app < step  # the namespace sample exists before the app is applied into it
    assert "rollout status deployment/example-app --namespace sample" in out


def test_without_the_part_the_dry_run_has_no_example_app(provision):
    code, out = provision("up", "--dry-run")
    assert code == 0, out
    assert "example-app" not in out
CONFIGMAP_DASHBOARDS_VALUES = STACK_DIR / "values" / "kube-prometheus-stack-configmap-dashboards.yaml"


def test_with_configmap_dashboards_the_primary_gets_the_sidecar_folder_values_and_nothing_else(provision):
    code, out = provision("up", "--dry-run", "--with", "configmap-dashboards")
    assert code == 0, out
    assert "optional parts: configmap-dashboards" in out
    installs = {line.split("kind-")[1].split()[0]: line for line in out.splitlines()
                if "upgrade --install kube-prometheus-stack" in line}
    assert f"--values {CONFIGMAP_DASHBOARDS_VALUES}" in installs["oke"]
    assert str(CONFIGMAP_DASHBOARDS_VALUES) not in installs["workstation"]  # the remote runs no Grafana


def test_the_part_values_are_the_sidecar_settings_the_chart_reads():
    """grafana chart 12.11.1 values.yaml sidecar.dashboards keys, as kube-prometheus-stack passes them to the subchart."""
    dashboards = yaml.safe_load(CONFIGMAP_DASHBOARDS_VALUES.read_text())["grafana"]["sidecar"]["dashboards"]
    assert dashboards == {"enabled": True, "label": "grafana_dashboard", "labelValue": "1", "searchNamespace": "ALL",
                          "folderAnnotation": "grafana_folder", "provider": {"foldersFromFilesStructure": True}}
