"""Helm values: only keys the pinned charts have, and the corrections, checked on what the plan passes to helm."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from conformance.provision import dashboards
from conformance.provision.plan import Options, up_plan
from conformance.provision.steps import Facts
from conformance.core.versions import load_versions
from conformance.core.stack import STACK_DIR, stack_services
from conformance.core.topology import load_topology

CHART_KEYS = Path(__file__).with_name("schemas") / "chart-keys"
VALUES = STACK_DIR / "values"
TOPOLOGY = Path(__file__).resolve().parents[2] / "kind" / "topology.yaml"
# (values file, chart it is for)
FILES = [
    ("kube-prometheus-stack.yaml", "kube-prometheus-stack"),
    ("kube-prometheus-stack-remote.yaml", "kube-prometheus-stack"),
    ("loki-stack.yaml", "loki-stack"),
    ("loki-stack-remote.yaml", "loki-stack"),
    ("kiali-operator.yaml", "kiali-operator"),
    ("metallb.yaml", "metallb"),
]


def key_paths(doc: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in doc.items():
        path = f"{prefix}.{k}" if prefix else str(k)
        out.append(path)
        if isinstance(v, dict):
            out += key_paths(v, path)
    return out


def known(path: str, keys: dict[str, str]) -> bool:
    """The chart has this key, or it sits under a free-form map/list of the chart."""
    if path in keys:
        return True
    parts = path.split(".")
    return any(keys.get(".".join(parts[:i])) == "open" for i in range(1, len(parts)))


def unknown_keys(filename: str, chart: str, own: set[str] = frozenset()) -> list[str]:
    """The keys of stack/values/<filename> the pinned chart does not have, our own top-level keys `own` aside."""
    keys = json.loads((CHART_KEYS / f"{chart}.json").read_text())["keys"]
    doc = yaml.safe_load((VALUES / filename).read_text())
    return [p for p in key_paths(doc) if not known(p, keys) and p.split(".")[0] not in own]


@pytest.mark.parametrize("filename,chart", FILES)
def test_values_use_only_keys_the_pinned_chart_has(filename, chart):
    assert unknown_keys(filename, chart) == [], f"{filename}: keys {chart} does not have (a typo is silently ignored by helm)"


def test_the_key_check_catches_a_typo():
    keys = json.loads((CHART_KEYS / "kube-prometheus-stack.json").read_text())["keys"]
    assert not known("prometheus.prometheusSpec.enableRemoteWriteReciever", keys)
    assert known("prometheus.prometheusSpec.externalLabels.cluster", keys)  # externalLabels: {} is free-form


# -- what helm actually gets: files merged, then --set and --set-json ----------------------------


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None:
            # A later file's null replaces; helm deletes it only where the chart's defaults have the
            # key (helm v3.19.0 pkg/chartutil/coalesce.go), so the user-supplied values keep it.
            out[k] = None
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def put(doc: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        doc = doc.setdefault(p, {})
    doc[last] = value


def rendered(argv: tuple[str, ...], facts: Facts) -> dict:
    """The user-supplied values of one `helm upgrade --install` (lists set with --set-json replace whole lists)."""
    values: dict = {}
    args = [facts.fill(a) for a in argv]
    for i, a in enumerate(args):
        if a == "--values":
            values = merge(values, yaml.safe_load(Path(args[i + 1]).read_text()) or {})
        elif a == "--set":
            k, v = args[i + 1].split("=", 1)
            put(values, k, {"true": True, "false": False}.get(v, v))
        elif a == "--set-json":
            k, v = args[i + 1].split("=", 1)
            put(values, k, json.loads(v))
    return values


def planned_values(topology, cache_dir: Path, facts: dict[str, str]) -> dict[tuple[str, str], dict]:
    """(cluster, release) -> the rendered values of each helm install the plan runs, run-time `facts` filled in."""
    filled = Facts()
    for key, value in facts.items():
        filled.set(key, value)
    steps = up_plan(Options(topology=topology, versions=load_versions(), cache_dir=cache_dir))
    return {(s.cluster, s.argv[s.argv.index("--install") + 1]): rendered(s.argv, filled)
            for s in steps if s.argv[:1] == ("helm",) and "upgrade" in s.argv}


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> dict[tuple[str, str], dict]:
    """(cluster, release) -> rendered values, from the plan with run-time facts filled in."""
    return planned_values(load_topology(TOPOLOGY), tmp_path_factory.mktemp("cache"),
                          {"oke.loki_ip": "172.18.255.231", "oke.prometheus_ip": "172.18.255.232"})


def test_rendered_values_including_set_flags_use_only_known_keys(releases):
    for (cluster, release), values in releases.items():
        keys = json.loads((CHART_KEYS / f"{release}.json").read_text())["keys"]
        assert [p for p in key_paths(values) if not known(p, keys)] == [], f"{cluster} {release}"


def test_primary_prometheus_receives_remote_write_and_labels_its_cluster(releases):
    spec = releases[("oke", "kube-prometheus-stack")]["prometheus"]["prometheusSpec"]
    assert spec["enableRemoteWriteReceiver"] is True
    assert spec["externalLabels"]["cluster"] == "oke"
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is True  # hence the monitors' release label


def test_remote_prometheus_writes_to_the_primary_with_its_own_cluster_label(releases):
    spec = releases[("workstation", "kube-prometheus-stack")]["prometheus"]["prometheusSpec"]
    assert spec["externalLabels"]["cluster"] == "workstation"
    # The placeholder in the file is replaced by the primary Prometheus' MetalLB address, not appended to.
    assert spec["remoteWrite"] == [{"url": "http://172.18.255.232:9090/api/v1/write"}]
    assert releases[("workstation", "kube-prometheus-stack")]["grafana"]["enabled"] is False


@pytest.mark.parametrize("cluster,url", [
    ("oke", "http://loki-stack:3100/loki/api/v1/push"),
    ("workstation", "http://172.18.255.231:3100/loki/api/v1/push"),
])
def test_promtail_pushes_with_its_cluster_label(releases, cluster, url):
    clients = releases[(cluster, "loki-stack")]["promtail"]["config"]["clients"]
    # One client, and its external_labels survive the override (docs/troubleshooting.md#logs-arrive-without-the-cluster-label).
    assert clients == [{"url": url, "external_labels": {"cluster": cluster}}]


def test_loki_image_is_pinned_to_2_9_3_and_only_on_the_primary(releases):
    versions = load_versions()
    assert versions.loki_image_tag == "2.9.3"
    assert releases[("oke", "loki-stack")]["loki"]["image"]["tag"] == versions.loki_image_tag
    assert releases[("workstation", "loki-stack")]["loki"]["enabled"] is False


def test_exactly_one_default_datasource(releases):
    kps = releases[("oke", "kube-prometheus-stack")]["grafana"]
    loki = releases[("oke", "loki-stack")]
    defaults = []
    # kube-prometheus-stack's Prometheus datasource (sidecar.datasources.defaultDatasourceEnabled defaults to true).
    if kps["sidecar"]["datasources"].get("isDefaultDatasource", True):
        defaults.append("Prometheus")
    defaults += [d["name"] for d in kps.get("additionalDataSources", []) if d.get("isDefault")]
    # loki-stack's own datasource ConfigMap, found by the same sidecar label, unless disabled.
    if loki["grafana"]["sidecar"]["datasources"].get("enabled", True) and loki["loki"].get("isDefault", True):
        defaults.append("loki-stack's Loki")
    assert defaults == ["Prometheus"]
    assert [d["uid"] for d in kps["additionalDataSources"] if d["type"] == "loki"] == ["loki"]


def test_grafana_password_comes_from_the_secret_services_yaml_names(releases):
    admin = releases[("oke", "kube-prometheus-stack")]["grafana"]["admin"]
    cred = stack_services()["grafana"].credentials_secret
    assert (admin["existingSecret"], admin["userKey"], admin["passwordKey"]) == (cred.name, cred.user_key, cred.password_key)
    assert "adminPassword" not in releases[("oke", "kube-prometheus-stack")]["grafana"]


# (gnetId, provider folder) the issue asks for; the suite matches meta.folderTitle and "<key>.json".
DASHBOARDS = [(1860, "Node"), (7645, "Istio"), (7639, "Istio"), (11829, "Istio"), (7636, "Istio"),
              (7630, "Istio"), (13639, "Logs")]


def test_dashboards_are_declared_in_the_chart_native_shape():
    declared = dashboards.declared()
    assert sorted((d.gnet_id, d.folder) for d in declared) == sorted(DASHBOARDS)
    grafana = yaml.safe_load((VALUES / "kube-prometheus-stack.yaml").read_text())["grafana"]
    for p in grafana["dashboardProviders"]["dashboardproviders.yaml"]["providers"]:
        # The chart mounts provider <name> at this path; any other path provisions nothing.
        assert p["options"]["path"] == f"/var/lib/grafana/dashboards/{p['name']}"
    for provider, entries in grafana["dashboards"].items():
        for key, spec in entries.items():
            assert set(spec) == {"gnetId", "revision", "datasource"}, key
    assert len({d.key for d in declared}) == len(declared), "keys are file names: unique"


def test_release_names_match_the_services_the_suite_reaches():
    charts = load_versions().charts
    svc = stack_services()
    # Service names derive from the release name (fullname = release when it contains the chart name).
    assert svc["prometheus"].service == f"{charts['kube-prometheus-stack'].release}-prometheus"
    assert svc["grafana"].service == f"{charts['kube-prometheus-stack'].release}-grafana"
    assert svc["loki"].service == charts["loki-stack"].release


def test_istioctl_matches_istio_and_kubectl_matches_the_nodes():
    v = load_versions()
    assert v.tools["istioctl"].version == v.istio
    assert v.tools["kubectl"].version.lstrip("v").startswith(v.node_kubernetes + ".")


@pytest.mark.parametrize("values", ["loki-stack.yaml", "loki-stack-remote.yaml"])
def test_promtail_renders_the_metrics_service_the_logs_checks_read(values):
    """The promtail chart renders <release>-promtail-metrics only with service.enabled (default false)."""
    charts = load_versions().charts
    doc = yaml.safe_load((Path(__file__).parents[2] / "stack" / "values" / values).read_text())
    assert doc["promtail"]["service"]["enabled"] is True
    assert stack_services()["promtail"].service == f"{charts['loki-stack'].release}-promtail-metrics"
