"""The optional part events in the bring-up: the Bitnami chart on every cluster, each pushing to the primary Loki."""

from __future__ import annotations

import json

import pytest
import yaml

from conformance.provision.parts import EVENT_EXPORTER_VALUES, event_receivers
from conformance.core.versions import load_versions
from tests.provision.test_parts_plan import topology_with

CHART = "oci://registry-1.docker.io/bitnamicharts/kubernetes-event-exporter --version 3.0.2"


def exporter_installs(lines: list[str]) -> dict[str, str]:
    """cluster -> the helm command installing the exporter there."""
    return {l.split("kind-")[1].split()[0]: l for l in lines
            if l.lstrip().startswith("helm") and "upgrade --install kubernetes-event-exporter" in l}


def receivers_of(command_argv: list[str]) -> list[dict]:
    (arg,) = [a for a in command_argv if a.startswith("config.receivers=")]
    return json.loads(arg.split("=", 1)[1])


def test_the_default_topology_installs_no_exporter(provision):
    code, out = provision("up", "--dry-run")
    assert code == 0, out
    assert "kubernetes-event-exporter" not in out.split("charts:")[1].split("\n", 1)[1]  # only the pin line names it


def test_with_events_every_cluster_installs_the_pinned_chart_and_image(provision):
    code, out = provision("up", "--dry-run", "--with", "events")
    assert code == 0, out
    assert "optional parts: events" in out
    installs = exporter_installs(out.splitlines())
    assert set(installs) == {"oke", "workstation"}
    for cluster, line in installs.items():
        assert CHART in line  # OCI: no --repo
        assert f"--values {EVENT_EXPORTER_VALUES}" in line
        assert f"--set image.tag={load_versions().apps['kubernetes-event-exporter']}" in line
        assert f'"streamLabels": {{"job": "kubernetes-event", "cluster": "{cluster}"}}' in line
    # The primary pushes in-cluster; the remote to the primary Loki's MetalLB address, as its Promtail does.
    assert '"url": "http://loki-stack:3100/loki/api/v1/push"' in installs["oke"]
    assert '"url": "http://<oke.loki_ip>:3100/loki/api/v1/push"' in installs["workstation"]


def test_up_with_events_installs_the_remote_s_exporter_after_the_primary_loki_has_its_address(provision, fakebin, tmp_path):
    code, out = provision("up", topology=topology_with(tmp_path, ["events"]))
    assert code == 0, out
    calls = [(" ".join([c["tool"], *c["argv"]]), c["argv"]) for c in fakebin.calls()]
    commands = [c for c, _ in calls]
    address = next(i for i, c in enumerate(commands) if "get service loki-stack " in c)
    installs = {c.split("kind-")[1].split()[0]: i for i, c in enumerate(commands)
                if "upgrade --install kubernetes-event-exporter" in c}
    assert address < installs["workstation"]
    (receiver,) = receivers_of(calls[installs["workstation"]][1])
    assert receiver["loki"]["streamLabels"] == {"job": "kubernetes-event", "cluster": "workstation"}
    url = receiver["loki"]["url"]
    assert url.startswith("http://") and url.endswith(":3100/loki/api/v1/push") and "@{" not in url  # the address filled


@pytest.mark.parametrize("key,expected,why", [
    ("image.registry", "ghcr.io", "the upstream image: Bitnami's tags went to bitnamilegacy in 2025"),
    ("image.repository", "resmoio/kubernetes-event-exporter", "resmoio's release workflow pushes here"),
    ("config.logFormat", "json", "the exporter's own log stays machine-readable"),
    ("config.maxEventAgeSeconds", 60, "the default 5 s drops events a slow informer delivers late"),
    ("config.kubeQPS", 100, "each new involved object's lookup runs a full API discovery (README: Events Discarded)"),
    ("config.kubeBurst", 500, "measured: 17.7 s to the first event at client-go's 5 QPS / 10 burst, 0.07 s at these"),
    ("config.route.routes", [{"match": [{"receiver": "loki"}]}], "every event to the loki receiver"),
])
def test_the_values_file_sets(key, expected, why):
    doc = yaml.safe_load(EVENT_EXPORTER_VALUES.read_text())
    for part in key.split("."):
        doc = doc[part]
    assert doc == expected, why


def test_the_receivers_set_json_replaces_the_values_file_s_placeholder_list_whole():
    doc = yaml.safe_load(EVENT_EXPORTER_VALUES.read_text())
    placeholder = doc["config"]["receivers"]
    replaced = json.loads(event_receivers("oke", "http://loki-stack:3100/loki/api/v1/push").split("=", 1)[1])
    assert [r["name"] for r in placeholder] == [r["name"] for r in replaced] == ["loki"]
    assert set(placeholder[0]["loki"]) == set(replaced[0]["loki"]) == {"streamLabels", "url"}
