"""The kubebench part in the bring-up: a Pushgateway on every cluster after its kube-prometheus-stack, and a
kube-bench CronJob per node of the node list the cluster gives at run time."""

from __future__ import annotations

import pytest
import yaml

from conformance.probes.kubebench import pushes as kb
from conformance.core.versions import load_versions
from conformance.core.stack import STACK_DIR
from tests.provision.test_parts_plan import topology_with

PUSHGATEWAY_VALUES = STACK_DIR / "values" / "prometheus-pushgateway.yaml"
APPS = load_versions().apps


def index(commands: list[str], *needles: str) -> int:
    return next(i for i, c in enumerate(commands) if all(n in c for n in needles))


def test_the_dry_run_shows_the_part_and_its_steps_on_every_cluster(provision):
    code, out = provision("up", "--dry-run", "--with", "kube-bench")
    assert code == 0, out
    assert "optional parts: kube-bench (interval: 1h)" in out
    lines = out.splitlines()
    for cluster in ("oke", "workstation"):
        helm = next(l for l in lines if "upgrade --install prometheus-pushgateway" in l and f"kind-{cluster}" in l)
        assert "--version 3.1.1" in helm and f"--values {PUSHGATEWAY_VALUES}" in helm
        # The chart's ServiceMonitor labelled for kube-prometheus-stack's selector (release=<its release>).
        assert "--set serviceMonitor.additionalLabels.release=kube-prometheus-stack" in helm
        assert f"--set image.tag={APPS['pushgateway']}" in helm
        assert f"[stack] {cluster} render a kube-bench CronJob per node (every 1h)" in out
        assert f"[stack] {cluster} kube-bench first run on every node" in out
    # The remote's Pushgateway comes after the remote's kube-prometheus-stack (its ServiceMonitor CRD).
    remote_kps = index(lines, "upgrade --install kube-prometheus-stack", "kind-workstation")
    remote_pg = index(lines, "upgrade --install prometheus-pushgateway", "kind-workstation")
    assert remote_kps < remote_pg


def test_without_the_part_nothing_of_it_is_installed(provision):
    code, out = provision("up", "--dry-run")
    assert code == 0, out
    assert "upgrade --install prometheus-pushgateway" not in out
    steps = [line for line in out.splitlines() if not line.strip().startswith("optional parts: none")]  # it lists them
    assert not [line for line in steps if "kube-bench" in line]


def test_up_renders_a_cronjob_for_each_node_the_cluster_lists(provision, fakebin, tmp_path):
    fakebin.scenario({"tool": "kubectl", "match": ["--context", "kind-oke", "get", "nodes"],
                      "stdout": "oke-control-plane oke-worker"},
                     {"tool": "kubectl", "match": ["--context", "kind-workstation", "get", "nodes"],
                      "stdout": "workstation-control-plane"})
    code, out = provision("up", topology=topology_with(tmp_path, {"kubebench": {"interval": "6h"}}))
    assert code == 0, out
    commands = fakebin.commands()
    rendered = provision.cache / "clusters" / "oke" / "kube-bench.yaml"
    docs = list(yaml.safe_load_all(rendered.read_text()))
    crons = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CronJob"}
    assert sorted(crons) == ["kube-bench-oke-control-plane", "kube-bench-oke-worker"]
    jobs = [d["metadata"]["name"] for d in docs if d["kind"] == "Job"]
    assert jobs == ["kube-bench-oke-control-plane-first", "kube-bench-oke-worker-first"]
    worker = crons["kube-bench-oke-worker"]
    assert worker["spec"]["schedule"] == "0 */6 * * *"
    assert worker["spec"]["jobTemplate"]["spec"]["template"]["spec"]["nodeName"] == "oke-worker"
    apply = index(commands, "kind-oke", "apply", str(rendered))
    wait = index(commands, "kind-oke", "wait", "job", "monitoring-conformance/run=first")
    assert index(commands, "kind-oke", "upgrade --install prometheus-pushgateway") < apply < wait
    remote = yaml.safe_load_all((provision.cache / "clusters" / "workstation" / "kube-bench.yaml").read_text())
    assert [d["metadata"]["name"] for d in remote if d["kind"] == "CronJob"] == ["kube-bench-workstation-control-plane"]


@pytest.mark.parametrize("interval, schedule, seconds", [
    ("1h", "0 * * * *", 3600), ("15m", "*/15 * * * *", 900), ("6h", "0 */6 * * *", 21600), ("24h", "0 0 * * *", 86400),
])
def test_each_interval_is_one_run_per_interval(interval, schedule, seconds):
    (_, cron, _) = yaml.safe_load_all(kb.render_node_manifests(["n1"], interval, kb.images(APPS), "http://pg:9091", "monitoring"))
    assert cron["spec"]["schedule"] == schedule
    # startingDeadlineSeconds 300 + activeDeadlineSeconds 600 (the manifest): a run pushes at most 15 min late.
    assert kb.max_age(interval) == seconds + 900


def test_the_rendered_pod_runs_the_pinned_images_and_pushes_to_the_node_s_group():
    (config_map, cron, job) = yaml.safe_load_all(
        kb.render_node_manifests(["oke-worker"], "1h", kb.images(APPS), "http://prometheus-pushgateway.monitoring.svc:9091", "monitoring"))
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    images = {c["name"]: c["image"] for c in pod["initContainers"] + pod["containers"]}
    assert images == {"kube-bench": f"docker.io/aquasec/kube-bench:{APPS['kube-bench']}",
                      "totals": f"docker.io/aquasec/kube-bench:{APPS['kube-bench']}",
                      "push": f"docker.io/curlimages/curl:{APPS['curl']}"}
    assert job["spec"]["template"] == cron["spec"]["jobTemplate"]["spec"]["template"]
    assert config_map["data"]["totals.jq"] == kb.push_program()
    assert kb.push_path("oke-worker") == "/metrics/job/kube-bench/instance/oke-worker/node/oke-worker"
    assert kb.grouping("oke-worker") == {"job": "kube-bench", "instance": "oke-worker", "node": "oke-worker"}


def test_the_pushgateway_overlay_scrapes_with_honor_labels():
    doc = yaml.safe_load(PUSHGATEWAY_VALUES.read_text())
    assert doc == {"serviceMonitor": {"enabled": True, "honorLabels": True}}
