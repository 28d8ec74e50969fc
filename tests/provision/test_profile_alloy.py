"""The alloy stack profile in the bring-up (issue 12): the plan, the values against the pinned charts, the images."""

from __future__ import annotations

import pytest
import yaml

from conformance.core.errors import ConfigError
from conformance.provision.phases.images import preload_images
from conformance.core.versions import load_versions
from conformance.core.stack import STACK_DIR, stack_services
from conformance.core.topology import load_topology
from tests.provision.test_parts_plan import topology_with
from tests.provision.test_values import TOPOLOGY, planned_values, unknown_keys

# (values file, chart, top-level keys of our own that the chart's templates read through tpl)
FILES = [
    ("loki.yaml", "loki", set()),
    ("alloy.yaml", "alloy", {"conformance"}),  # alloy.configMap.content is passed through tpl: .Values.conformance
    ("kube-prometheus-stack-alloy.yaml", "kube-prometheus-stack", set()),
]
PRIMARY_LOKI_IP = "172.18.255.231"


def test_the_default_profile_is_promtail_and_its_plan_installs_no_alloy(provision):
    assert load_topology(TOPOLOGY).profile == "promtail"
    code, out = provision("up", "--dry-run")
    assert code == 0, out
    assert "profile promtail: loki-stack 2.10.3" in out
    assert "install loki-stack (Loki + Promtail)" in out
    # No chart, no step, no values file of the other profile.
    assert "Alloy" not in out and "values/alloy.yaml" not in out and "loki 18.11.0" not in out


@pytest.mark.parametrize("how", ["flag", "topology"])
def test_the_alloy_dry_run_prints_the_whole_plan(provision, tmp_path, how):
    args = ["--profile", "alloy"] if how == "flag" else ["--topology", str(profile_topology(tmp_path))]
    code, out = provision("up", "--dry-run", *args)
    assert code == 0, out
    assert "profile alloy: the Loki chart (monolithic, Loki 3.x) on the primary" in out
    assert "charts: metallb 0.15.3, kube-prometheus-stack 88.5.3, kiali-operator 2.29.0, loki 18.11.0, alloy 1.11.1" in out
    assert "loki image tag 3.7.6, alloy image tag v1.18.1" in out
    assert "loki-stack" not in out
    steps = [line.strip() for line in out.splitlines() if line.strip()[:1].isdigit()]
    order = [s.split("] ", 1)[1] for s in steps if "Loki" in s or "Alloy" in s]
    assert order == ["oke install Loki (Loki chart, monolithic, Loki 3.x)",
                     "oke install Alloy (DaemonSet, loki.write to the primary Loki)",
                     "oke address of Loki",
                     "workstation install Alloy (DaemonSet, loki.write to the primary Loki)"]
    assert "get service loki --namespace monitoring" in out  # the Loki chart's Service, for MetalLB's address


def profile_topology(tmp_path):
    path = topology_with(tmp_path, None)
    doc = yaml.safe_load(path.read_text())
    doc.pop("parts", None)
    doc["profile"] = "alloy"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_an_unknown_profile_is_refused_naming_the_known_ones(provision, tmp_path):
    code, out = provision("up", "--dry-run", "--profile", "fluentbit")
    assert code == 2 and "profile 'fluentbit': unknown; expected one of promtail, alloy, vector-opensearch" in out, \
        out
    path = profile_topology(tmp_path)
    path.write_text(path.read_text().replace("profile: alloy", "profile: vector"))
    with pytest.raises(ConfigError,
                       match="profile: unknown profile 'vector'; expected one of promtail, alloy, vector-opensearch"):
        load_topology(path)


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> dict[tuple[str, str], dict]:
    """(cluster, release) -> rendered values of the alloy profile's plan, run-time facts filled in."""
    return planned_values(load_topology(TOPOLOGY).with_profile("alloy"), tmp_path_factory.mktemp("cache"),
                          {"oke.loki_ip": PRIMARY_LOKI_IP, "oke.prometheus_ip": "172.18.255.232"})


@pytest.mark.parametrize("filename,chart,own", FILES)
def test_values_use_only_keys_the_pinned_chart_has(filename, chart, own):
    assert unknown_keys(filename, chart, own) == []


def test_the_loki_chart_runs_one_monolithic_loki_the_remote_can_reach(releases):
    loki = releases[("oke", "loki")]
    assert loki["deploymentMode"] == "Monolithic" and loki["singleBinary"]["replicas"] == 1
    # templates/validate.yaml: scalable targets beside a monolithic one are refused; one replica on a filesystem.
    assert [loki[t]["replicas"] for t in ("write", "read", "backend")] == [0, 0, 0]
    assert loki["loki"]["storage"]["type"] == "filesystem" and loki["loki"]["schemaConfig"]["configs"]
    assert loki["singleBinary"]["service"]["type"] == "LoadBalancer"  # as loki-stack's loki.service.type
    assert loki["loki"]["auth_enabled"] is False
    assert loki["test"]["enabled"] is False or loki["lokiCanary"]["enabled"] is True  # validate.yaml
    assert ("workstation", "loki") not in releases


@pytest.mark.parametrize("cluster,url", [
    ("oke", "http://loki:3100/loki/api/v1/push"),
    ("workstation", f"http://{PRIMARY_LOKI_IP}:3100/loki/api/v1/push"),
])
def test_alloy_runs_on_every_cluster_writing_to_the_primary_loki_with_its_cluster_label(releases, cluster, url):
    alloy = releases[(cluster, "alloy")]
    assert alloy["conformance"] == {"cluster": cluster, "lokiPushUrl": url}
    content = alloy["alloy"]["configMap"]["content"]
    # What tpl fills in: the loki.write block reads both values.
    assert 'url = "{{ .Values.conformance.lokiPushUrl }}"' in content
    assert 'external_labels = {cluster = "{{ .Values.conformance.cluster }}"}' in content
    assert "loki.source.file" in content and "discovery.kubernetes" in content
    assert alloy["alloy"]["mounts"]["varlog"] is True  # /var/log/pods from the node
    assert alloy.get("controller", {}).get("type", "daemonset") == "daemonset"  # the chart's default


def test_grafana_reads_the_loki_chart_s_service(releases):
    sources = releases[("oke", "kube-prometheus-stack")]["grafana"]["additionalDataSources"]
    loki = stack_services(profile="alloy")["loki"]
    assert [d["url"] for d in sources if d["type"] == "loki"] == [f"http://{loki.service}.{loki.namespace}:{loki.port}"]


def test_services_yaml_has_a_row_per_profile_for_loki_and_the_agent():
    charts = load_versions().charts
    assert stack_services()["loki"].service == charts["loki-stack"].release
    assert stack_services(profile="alloy")["loki"].service == charts["loki"].release  # loki.fullname
    alloy = stack_services(profile="alloy")["alloy"]
    assert (alloy.service, alloy.port, alloy.roles) == (charts["alloy"].release, 12345, ("primary", "remote"))


def test_the_profile_s_images_are_derived_from_its_pins_and_preloaded():
    v = load_versions()
    alloy = preload_images(v, "alloy")
    assert f"docker.io/grafana/loki:{v.apps['loki3']}" in alloy
    assert f"docker.io/grafana/alloy:{v.apps['alloy']}" in alloy
    assert any(i.startswith("quay.io/prometheus-operator/prometheus-config-reloader:v0.91.0@sha256:") for i in alloy)
    default = preload_images(v)
    assert not any("grafana/alloy" in i or i.endswith(":3.7.6") for i in default)  # the default list is unchanged
    raw = yaml.safe_load((STACK_DIR / "versions.yaml").read_text())
    for template in raw["profile_images"]["alloy"]:
        assert "{" in template, f"{template}: a literal tag, not a pin"
