"""Contract tests of `up`/`down` against fake docker, kind, kubectl, helm and istioctl on PATH."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.provision.fakebin import PLANTED_CLIENT_KEY, PLANTED_PASSWORD, PLANTED_TOKEN
from tests.provision.conftest import make_offline_dir

PLANTED = (PLANTED_CLIENT_KEY, PLANTED_TOKEN, PLANTED_PASSWORD)


def index_of(commands: list[str], *words: str) -> int:
    """Position of the first command containing every word, in order of the call log."""
    for i, c in enumerate(commands):
        if all(w in c for w in words):
            return i
    raise AssertionError(f"no call with {words}")


# (earlier call, later call, why the order matters)
ORDER = [
    (("kind", "create", "--name oke"), ("helm", "metallb", "kind-oke"), "MetalLB needs the cluster"),
    (("kind", "create", "--name workstation"), ("docker", "ip route", "oke-control-plane"),
     "routes need both clusters' addresses"),
    (("helm", "metallb", "kind-oke"), ("istioctl", "install", "istio-eastwest.yaml"),
     "the east-west gateway's LoadBalancer needs a MetalLB pool"),
    (("kubectl", "apply", "metallb-pool.yaml"), ("kubectl", "get service istio-eastwestgateway"),
     "no address before the pool exists"),
    (("istioctl", "install", "istio-primary.yaml"), ("istioctl", "install", "istio-remote.yaml"),
     "the remote profile points at the primary's istiod"),
    (("kubectl", "get service istio-eastwestgateway"), ("istioctl", "install", "istio-remote.yaml"),
     "remotePilotAddress is the gateway's address"),
    (("kubectl", "annotate", "controlPlaneClusters"), ("istioctl", "install", "istio-remote.yaml"),
     "istio.io's documented order: annotate istio-system first"),
    (("istioctl", "create-remote-secret"), ("kubectl", "kind-oke", "apply", "istio-remote-secret.yaml"),
     "the secret is applied on the primary"),
    (("kubectl", "apply", "namespaces.yaml"), ("helm", "loki-stack", "kind-oke"),
     "monitoring is labelled not-injected before anything runs in it"),
    (("kubectl", "apply", "grafana-admin-secret.yaml"), ("helm", "kube-prometheus-stack", "kind-oke"),
     "the chart uses the existing Secret"),
    (("helm", "kube-prometheus-stack", "kind-oke"), ("kubectl", "apply", "istiod-servicemonitor.yaml"),
     "monitor CRDs come with the chart"),
    (("kubectl", "get service loki-stack"), ("helm", "loki-stack", "kind-workstation"),
     "remote Promtail pushes to the primary Loki's address"),
    (("kubectl", "get service kube-prometheus-stack-prometheus"), ("helm", "kube-prometheus-stack", "kind-workstation"),
     "remote Prometheus writes to the primary's address"),
    (("kubectl", "apply", "kiali-remote-secret-workstation.yaml"), ("kubectl", "apply", "kiali.yaml"),
     "the operator reads remote secrets only when it reconciles the CR"),
    (("helm", "kiali-operator"), ("kubectl", "apply", "kiali.yaml"), "the Kiali CRD comes with the operator"),
    (("istioctl", "install", "istio-remote.yaml"), ("kubectl", "apply", "app/namespace.yaml"),
     "injection needs the webhook"),
]


@pytest.mark.parametrize("before,after,why", ORDER, ids=[o[2] for o in ORDER])
def test_up_runs_steps_in_dependency_order(happy_up, before, after, why):
    assert happy_up.code == 0, happy_up.out
    commands = happy_up.fakebin.commands()
    assert index_of(commands, *before) < index_of(commands, *after), why


def test_up_creates_both_clusters_with_pinned_image_configs_and_private_kubeconfigs(happy_up):
    provision, fakebin, out = happy_up.provision, happy_up.fakebin, happy_up.out
    assert happy_up.code == 0, out
    creates = [c for c in fakebin.commands() if c.startswith("kind create cluster")]
    # One create per kind cluster of kind/topology.yaml, each from its own config.
    assert len(creates) == 2
    for name in ("oke", "workstation"):
        create = next(c for c in creates if f"--name {name}" in c)
        assert f"kind/{name}.yaml" in create and "kindest/node:v1.35.0@sha256:" in create
        kubeconfig = provision.cache / "clusters" / name / "kubeconfig"
        assert kubeconfig.stat().st_mode & 0o077 == 0, "kubeconfigs hold client keys: owner-only"
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        # The control-plane container's address on the kind network, reachable from the other cluster.
        assert server.startswith("https://172.18.0.") and server.endswith(":6443")
    assert "export KUBECONFIG=" in out


def test_second_up_creates_nothing(already_up, fakebin):
    provision = already_up
    code, out = provision("up")
    assert code == 0, out
    commands = fakebin.commands()
    assert not [c for c in commands if "kind create" in c]
    assert "create kind cluster: skipped" in out
    # The generated Grafana password is reused, so a reused Grafana keeps working.
    secret = provision.cache / "clusters" / "oke" / "grafana-admin-secret.yaml"
    assert secret.is_file()


def test_up_refuses_a_cluster_it_did_not_create(provision, fakebin):
    fakebin.existing_clusters("workstation")  # the user's own cluster, no marker
    code, out = provision("up")
    assert code == 1
    assert "a kind cluster named workstation exists that this tool did not create" in out
    assert not [c for c in fakebin.commands() if "kind create" in c or "kind delete" in c]


def test_up_refuses_a_cluster_made_from_another_config(already_up, fakebin):
    provision = already_up
    marker = provision.cache / "clusters" / "oke" / "created-by-monitoring-conformance.json"
    doc = json.loads(marker.read_text())
    doc["config_sha256"] = "0" * 64
    marker.write_text(json.dumps(doc))
    code, out = provision("up")
    assert code == 1 and "run `nox -s down`" in out


def test_up_refuses_a_cluster_recreated_by_hand_under_our_name(already_up, fakebin):
    provision = already_up
    marker = provision.cache / "clusters" / "oke" / "created-by-monitoring-conformance.json"
    doc = json.loads(marker.read_text())
    doc["container_id"] = "container-id-of-the-cluster-we-made-and-the-user-deleted"
    marker.write_text(json.dumps(doc))
    code, out = provision("up")
    assert code == 1 and "was recreated outside this tool" in out


def test_failure_midway_stops_names_the_step_and_leaves_a_redacted_bundle(provision, fakebin):
    fakebin.scenario({"tool": "helm", "match": ["kind-oke", "upgrade", "kube-prometheus-stack"], "exit": 1,
                      "stderr": f"Error: INSTALLATION FAILED: context deadline exceeded (token: {PLANTED_TOKEN})\n"})
    code, out = provision("up")
    assert code == 1
    assert "bring-up failed at stack oke: install kube-prometheus-stack" in out
    assert "context deadline exceeded" in out
    commands = fakebin.commands()
    failed_at = index_of(commands, "helm", "kube-prometheus-stack", "kind-oke")
    # Nothing of the plan after the failed step; then only the diagnostics' read-only calls.
    assert not [c for c in commands[failed_at + 1:] if "helm upgrade" in c or " apply " in c or "istioctl install" in c]
    bundle = provision.reports / "diagnostics"
    for name in ("oke", "workstation"):
        files = {p.name for p in (bundle / name).iterdir()}
        assert {"events.txt", "pods.txt", "kind-export-logs.txt"} <= files
        # The fake lists one non-Ready Grafana pod with restarts: describe, logs and previous logs.
        assert "pod-monitoring-kube-prometheus-stack-grafana-0-previous-logs.txt" in files
    trace = json.loads((provision.reports / "trace.json").read_text())
    assert trace["result"] == "failed" and trace["failed_step"] == "stack oke: install kube-prometheus-stack (receiver, Grafana)"
    case = ET.parse(provision.junit).getroot().find("testsuite/testcase")
    assert case.get("name") == "stack"
    assert "install kube-prometheus-stack" in case.find("failure").get("message")
    assert str(bundle) in case.find("system-out").text
    assert_no_planted_secret(provision.reports, out)


def assert_no_planted_secret(reports: Path, out: str) -> None:
    """No planted credential, nor the generated Grafana password, in output, trace, JUnit or bundle."""
    texts = {"output": out}
    texts.update({str(p): p.read_text(errors="replace") for p in reports.rglob("*") if p.is_file()})
    for where, text in texts.items():
        for secret in PLANTED:
            assert secret not in text, f"planted secret leaked into {where}"


def test_generated_grafana_password_is_never_printed_or_traced(happy_up):
    provision, fakebin, out = happy_up.provision, happy_up.fakebin, happy_up.out
    assert happy_up.code == 0
    secret_file = provision.cache / "clusters" / "oke" / "grafana-admin-secret.yaml"
    password = yaml.safe_load(secret_file.read_text())["stringData"]["admin-password"]
    assert secret_file.stat().st_mode & 0o077 == 0
    assert len(password) >= 24
    for text in [out, *(p.read_text() for p in provision.reports.rglob("*") if p.is_file())]:
        assert password not in text
    assert password not in " ".join(fakebin.commands()), "never on a command line (visible in ps)"


def test_remote_secret_uses_the_control_plane_address_never_loopback(happy_up):
    provision, fakebin = happy_up.provision, happy_up.fakebin
    assert happy_up.code == 0, happy_up.out
    call = next(c for c in fakebin.calls() if c["argv"][:1] == ["create-remote-secret"])
    server = call["argv"][call["argv"].index("--server") + 1]
    assert server == "https://172.18.0.3:6443", "workstation's control-plane container address"
    applied = provision.cache / "clusters" / "workstation" / "istio-remote-secret.yaml"
    assert "127.0.0.1" not in applied.read_text()


def test_a_loopback_remote_secret_is_refused_before_it_is_applied(provision, fakebin):
    loopback = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "istio-remote-secret-workstation"},
                "stringData": {"workstation": yaml.safe_dump(
                    {"clusters": [{"name": "workstation", "cluster": {"server": "https://127.0.0.1:43421"}}]})}}
    fakebin.scenario({"tool": "istioctl", "match": ["create-remote-secret"], "stdout": yaml.safe_dump(loopback)})
    code, out = provision("up")
    assert code == 1
    assert "remote secret points at a non-loopback API server" in out and "127.0.0.1:43421" in out
    assert not [c for c in fakebin.commands() if "apply" in c and "istio-remote-secret.yaml" in c]


def test_kiali_remote_secret_is_labelled_annotated_and_not_loopback(happy_up):
    assert happy_up.code == 0
    doc = yaml.safe_load((happy_up.provision.cache / "clusters" / "oke" / "kiali-remote-secret-workstation.yaml").read_text())
    assert doc["metadata"]["labels"] == {"kiali.io/multiCluster": "true"}
    assert doc["metadata"]["annotations"] == {"kiali.io/cluster": "workstation"}
    kubeconfig = yaml.safe_load(doc["stringData"]["workstation"])
    # Kiali takes the cluster name from the kubeconfig's only cluster (kiali cluster_secret.go).
    assert [c["name"] for c in kubeconfig["clusters"]] == ["workstation"]
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://172.18.0.3:6443"


def test_down_deletes_only_clusters_with_our_marker(already_up, fakebin):
    provision = already_up
    # The user deletes workstation by hand and makes their own cluster with the same name.
    (provision.cache / "clusters" / "workstation" / "created-by-monitoring-conformance.json").write_text(
        json.dumps({"container_id": "container-id-of-another-workstation"}))
    fakebin.existing_clusters("oke", "workstation", "users-own")
    code, out = provision("down")
    assert code == 0, out
    deletes = [c for c in fakebin.commands() if c.startswith("kind delete")]
    assert deletes == [next(c for c in deletes if "--name oke" in c)]
    assert "workstation: not created by this tool" in out
    assert json.loads((fakebin.dir / "clusters.json").read_text()) == ["workstation", "users-own"]


def test_down_without_any_marker_deletes_nothing(provision, fakebin):
    fakebin.existing_clusters("oke", "workstation")
    code, out = provision("down")
    assert code == 0 and "nothing to delete" in out
    assert not [c for c in fakebin.commands() if "kind delete" in c]


@pytest.mark.parametrize("with_docker", [True, False], ids=["fakes-on-path", "no-docker-at-all"])
def test_dry_run_prints_the_whole_plan_and_executes_nothing(provision, fakebin, monkeypatch, tmp_path, with_docker):
    if not with_docker:
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, out = provision("up", "--dry-run")
    assert code == 0, out
    assert fakebin.calls() == []
    assert not provision.cache.exists() and not provision.reports.exists()
    # What issue 4's "done when" asks the plan to show.
    for expected in ("kind create cluster --name oke", "kind create cluster --name workstation",
                     "upgrade --install metallb metallb", "--version 0.15.3",
                     "istio-primary.yaml", "istio-remote.yaml", "create-remote-secret --name workstation",
                     "--server 'https://<workstation.control_plane_ip>:6443'",
                     "kube-prometheus-stack --repo https://prometheus-community.github.io/helm-charts --version 88.5.3",
                     "loki-stack --repo https://grafana.github.io/helm-charts --version 2.10.3",
                     "kiali-operator --repo https://kiali.org/helm-charts --version 2.29.0", "Istio 1.29.6"):
        assert expected in out, expected
    assert "127.0.0.1" not in out


def test_dry_run_down_executes_nothing(provision, fakebin):
    code, out = provision("down", "--dry-run")
    assert code == 0 and "kind delete cluster --name oke" in out
    assert fakebin.calls() == []


def test_preload_checks_local_images_then_loads_them_into_every_node(provision, fakebin):
    code, out = provision("up", "--preload")
    assert code == 0, out
    commands = fakebin.commands()
    inspect = index_of(commands, "docker image inspect")
    assert "docker.io/grafana/loki:2.9.3" in commands[inspect]
    loads = [c for c in commands if c.startswith("kind load docker-image")]
    assert len(loads) == 2 and all("docker.io/istio/proxyv2:1.29.6" in c for c in loads)
    assert inspect < index_of(commands, "kind load") < index_of(commands, "helm", "metallb")


def test_preload_names_the_missing_images(provision, fakebin):
    fakebin.scenario({"tool": "docker", "match": ["image", "inspect"], "exit": 1,
                      "stderr": "Error response from daemon: No such image: docker.io/grafana/loki:2.9.3\n"})
    code, out = provision("up", "--preload")
    assert code == 1 and "No such image: docker.io/grafana/loki:2.9.3" in out


def test_offline_dashboards_come_from_files_not_grafana_com(provision, fakebin, tmp_path, http_server):
    base, routes = http_server
    routes.clear()  # grafana.com unreachable: only --offline may proceed
    folder = make_offline_dir(tmp_path / "offline")
    code, out = provision("up", "--offline", str(folder))
    assert code == 0, out
    kps = next(c for c in fakebin.commands() if "kube-prometheus-stack" in c and "kind-oke" in c and "helm" in c)
    overlay = provision.cache / "clusters" / "oke" / "grafana-dashboards-offline.yaml"
    assert str(overlay) in kps
    assert yaml.safe_load(overlay.read_text())["grafana"]["dashboardsConfigMaps"]["istio"] == "grafana-dashboards-istio"
    assert index_of(fakebin.commands(), "apply", "--server-side", "grafana-dashboards.yaml") < fakebin.commands().index(kps)


def test_offline_refuses_a_wrapped_dashboard(provision, fakebin, tmp_path):
    from conformance.probes.dashboards.declared import declared
    folder = tmp_path / "dashboards"
    folder.mkdir()
    for d in declared():
        (folder / f"{d.key}.json").write_text(json.dumps({"dashboard": {"title": d.key}}))
    code, out = provision("up", "--offline", str(folder))
    assert code == 2 and "wrapper" in out and out.count("\n") == 1
    assert fakebin.calls() == []


def test_diagnose_after_failing_tests_points_the_junit_at_the_bundle(already_up, fakebin):
    provision = already_up
    provision.junit.parent.mkdir(parents=True, exist_ok=True)
    provision.junit.write_text('<testsuites><testsuite name="pytest" tests="1" failures="1">'
                               '<testcase name="test_logs"><failure message="x"/></testcase></testsuite></testsuites>')
    code, out = provision("diagnose")
    assert code == 0
    prop = ET.parse(provision.junit).getroot().find("testsuite/properties/property")
    assert prop.get("name") == "diagnostics" and prop.get("value") == str(provision.reports / "diagnostics")
    assert (provision.reports / "diagnostics" / "oke" / "events.txt").is_file()
    assert_no_planted_secret(provision.reports, out)
