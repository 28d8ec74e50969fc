"""The vector-opensearch stack profile in the bring-up (issue 20): the plan, the values against the pinned charts, the
Vector config each cluster gets once helm's tpl has filled it in, and the images."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conformance.core.errors import ConfigError
from conformance.core.profiles import foreign_services, profile
from conformance.provision import dashboards
from conformance.provision.phases.images import preload_images
from conformance.provision.plan import Options, up_plan
from conformance.core.versions import load_versions
from conformance.core.stack import STACK_DIR, stack_services
from conformance.core.topology import load_topology
from tests.provision.test_parts_plan import topology_with
from tests.provision.test_values import CHART_KEYS, TOPOLOGY, known, planned_values, unknown_keys

# (values file, chart, top-level keys of our own that the chart's templates read through tpl)
FILES = [
    ("opensearch.yaml", "opensearch", set()),
    ("opensearch-dashboards.yaml", "opensearch-dashboards", set()),
    ("vector.yaml", "vector", {"conformance"}),  # customConfig is passed through tpl: .Values.conformance
    ("kube-prometheus-stack-vector-opensearch.yaml", "kube-prometheus-stack", set()),
]
PRIMARY_OPENSEARCH_IP = "172.18.255.233"
PROFILE = "vector-opensearch"
# What helm's tpl reads in customConfig: only the conformance block (any other {{ }} would be a template error,
# Vector's own {{ field }} templating included).
TPL_ACTION = re.compile(r"\{\{\s*\.Values\.conformance\.(\w+)\s*\}\}")


def profile_topology(tmp_path, parts=None):
    path = topology_with(tmp_path, parts)
    doc = yaml.safe_load(path.read_text())
    if parts is None:
        doc.pop("parts", None)
    doc["profile"] = PROFILE
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("how", ["flag", "topology"])
def test_the_dry_run_prints_the_whole_plan(provision, tmp_path, how):
    args = ["--profile", PROFILE] if how == "flag" else ["--topology", str(profile_topology(tmp_path))]
    code, out = provision("up", "--dry-run", *args)
    assert code == 0, out
    assert f"profile {PROFILE}: OpenSearch (one node, security plugin off) and OpenSearch Dashboards" in out
    assert ("charts: metallb 0.15.3, kube-prometheus-stack 88.5.3, kiali-operator 2.29.0, opensearch 3.6.0, "
            "opensearch-dashboards 3.6.0, vector 0.56.0") in out
    assert "opensearch image tag 3.6.0, opensearch-dashboards image tag 3.6.0, vector image tag 0.56.0-distroless-libc" in out
    assert "loki-stack" not in out and "Loki" not in out and "Alloy" not in out and "Promtail" not in out
    steps = [line.strip() for line in out.splitlines() if line.strip()[:1].isdigit()]
    order = [s.split("] ", 1)[1] for s in steps if "OpenSearch" in s or "Vector" in s]
    assert order == ["oke install OpenSearch (opensearch chart, one node, security plugin off)",
                     "oke install OpenSearch Dashboards (log search on logs-*)",
                     "oke index pattern logs-* in OpenSearch Dashboards",
                     "oke install Vector (DaemonSet, elasticsearch sink to the primary OpenSearch)",
                     "oke address of OpenSearch",
                     "workstation install Vector (DaemonSet, elasticsearch sink to the primary OpenSearch)"]
    # The opensearch chart's Service, for MetalLB's address; the remote's Vector reads that fact.
    assert "get service opensearch-cluster-master --namespace monitoring" in out
    assert '"opensearchUrl": "http://<oke.opensearch_ip>:9200"' in out


def test_dashboards_get_the_logs_index_pattern_from_the_preloaded_curl_image(tmp_path):
    steps = up_plan(Options(topology=load_topology(TOPOLOGY).with_profile(PROFILE), versions=load_versions(),
                            cache_dir=tmp_path / "cache"))
    titles = [s.title for s in steps]
    at = titles.index("index pattern logs-* in OpenSearch Dashboards")
    assert titles[at - 1] == "no leftover index-pattern pod (an interrupted earlier run)"
    argv = steps[at].argv
    ui = stack_services(profile=PROFILE)["opensearch-dashboards"]
    assert argv[-1] == f"http://{ui.service}:{ui.port}/api/saved_objects/index-pattern/logs?overwrite=true"
    assert json.loads(argv[argv.index("--data") + 1]) == {"attributes": {"title": "logs-*", "timeFieldName": "timestamp"}}
    assert "osd-xsrf: true" in argv and "--fail" in argv and "--rm" in argv and "--restart=Never" in argv
    image = argv[argv.index("--image") + 1]
    assert image in preload_images(load_versions(), PROFILE)
    # curl's own retries end before the step's bound: a Dashboards that never answers fails the step, not hangs it.
    assert int(argv[argv.index("--retry-max-time") + 1]) < steps[at].timeout


def test_the_default_and_alloy_plans_install_none_of_it(provision):
    for args in ([], ["--profile", "alloy"]):
        code, out = provision("up", "--dry-run", *args)
        assert code == 0, out
        assert "opensearch" not in out.lower() and "vector" not in out.lower(), args


def test_the_events_part_is_refused_on_this_profile_naming_why(tmp_path):
    topo = load_topology(profile_topology(tmp_path, parts=["events"]))
    with pytest.raises(ConfigError, match="part events: the exporter pushes to the primary Loki, and profile "
                                          "vector-opensearch runs none .* not yet supported on this profile"):
        up_plan(Options(topology=topo, versions=load_versions(), cache_dir=tmp_path / "cache"))


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> dict[tuple[str, str], dict]:
    """(cluster, release) -> rendered values of this profile's plan, run-time facts filled in."""
    return planned_values(load_topology(TOPOLOGY).with_profile(PROFILE), tmp_path_factory.mktemp("cache"),
                          {"oke.opensearch_ip": PRIMARY_OPENSEARCH_IP, "oke.prometheus_ip": "172.18.255.232"})


@pytest.mark.parametrize("filename,chart,own", FILES)
def test_values_use_only_keys_the_pinned_chart_has(filename, chart, own):
    assert unknown_keys(filename, chart, own) == []


def test_the_key_check_knows_these_charts():
    keys = json.loads((CHART_KEYS / "opensearch.json").read_text())["keys"]
    assert known("securityConfig.enabled", keys) and not known("security.enabled", keys)
    vector = json.loads((CHART_KEYS / "vector.json").read_text())["keys"]
    assert known("customConfig.sinks.anything", vector)  # customConfig: {} is free-form
    assert not known("customconfig", vector)


def test_opensearch_is_one_plain_http_node_the_remote_can_reach(releases):
    node = releases[("oke", "opensearch")]
    assert node["singleNode"] is True and node["replicas"] == 1
    # The security plugin off through the image's entrypoint; no admin password then needed (values comment).
    assert {"name": "DISABLE_SECURITY_PLUGIN", "value": "true"} in node["extraEnvs"]
    assert not any(e["name"] == "OPENSEARCH_INITIAL_ADMIN_PASSWORD" for e in node["extraEnvs"])
    assert node["securityConfig"]["enabled"] is False and node["protocol"] == "http"
    assert node["service"]["type"] == "LoadBalancer"
    assert node["persistence"]["enableInitChown"] is False  # no busybox:latest init container to preload
    assert ("workstation", "opensearch") not in releases and ("workstation", "opensearch-dashboards") not in releases


def test_dashboards_read_the_opensearch_service_over_http_without_the_security_plugin(releases):
    ui = releases[("oke", "opensearch-dashboards")]
    store = stack_services(profile=PROFILE)["opensearch"]
    assert ui["opensearchHosts"] == f"http://{store.service}:{store.port}"
    assert {"name": "DISABLE_SECURITY_DASHBOARDS_PLUGIN", "value": "true"} in ui["extraEnvs"]


def vector_config(values: dict) -> dict:
    """customConfig as helm's tpl renders it (templates/configmap.yaml): the conformance block filled in."""
    text = yaml.safe_dump(values["customConfig"])
    filled = TPL_ACTION.sub(lambda m: str(values["conformance"][m.group(1)]), text)
    assert "{{" not in filled, f"a template action tpl would not fill: {filled}"
    return yaml.safe_load(filled)


@pytest.mark.parametrize("cluster,url", [
    ("oke", "http://opensearch-cluster-master:9200"),
    ("workstation", f"http://{PRIMARY_OPENSEARCH_IP}:9200"),
])
def test_vector_runs_on_every_cluster_writing_to_the_primary_opensearch_with_its_cluster(releases, cluster, url):
    values = releases[(cluster, "vector")]
    assert values["role"] == "Agent"  # templates/daemonset.yaml
    assert values["conformance"] == {"cluster": cluster, "opensearchUrl": url}
    config = vector_config(values)
    assert config["sources"]["kubernetes_logs"] == {"type": "kubernetes_logs"}
    remap = config["transforms"]["cluster"]
    assert remap["type"] == "remap" and remap["inputs"] == ["kubernetes_logs"]
    assert remap["source"].strip() == f'.cluster = "{cluster}"'
    sink = config["sinks"]["opensearch"]
    assert sink["type"] == "elasticsearch" and sink["inputs"] == ["cluster"] and sink["endpoints"] == [url]
    assert sink["mode"] == "bulk" and sink["bulk"] == {"index": "logs-%Y-%m-%d"}
    # auto would read OpenSearch's "3.6.0" as major 3 and write _type (src/sinks/elasticsearch/common.rs).
    assert sink["api_version"] == "v7"


def test_vector_s_own_counters_are_where_services_yaml_says(releases):
    config = vector_config(releases[("workstation", "vector")])
    exporter = config["sinks"]["prom_exporter"]
    assert exporter["type"] == "prometheus_exporter" and exporter["inputs"] == ["internal_metrics"]
    assert config["sources"]["internal_metrics"] == {"type": "internal_metrics"}
    vector = stack_services(profile=PROFILE)["vector"]
    # _helpers.tpl vector.ports: the sink's port, named after it (prom_exporter -> prom-exporter).
    assert exporter["address"] == f"0.0.0.0:{vector.port}"
    assert (vector.service, vector.roles) == (load_versions().charts["vector"].release, ("primary", "remote"))


def test_grafana_has_no_loki_datasource_and_no_loki_dashboard_on_this_profile(releases):
    grafana = releases[("oke", "kube-prometheus-stack")]["grafana"]
    assert grafana["additionalDataSources"] == []
    assert grafana["dashboards"]["logs"] is None  # helm keeps it (no default): an empty provider ConfigMap
    assert [d.key for d in dashboards.declared(profile=PROFILE) if d.provider == "logs"] == []
    assert [d.key for d in dashboards.declared() if d.provider == "logs"] == ["logs-app"]  # the others keep it


def test_services_yaml_has_the_profile_s_names_and_no_loki_on_it():
    charts = load_versions().charts
    svc = stack_services(profile=PROFILE)
    assert (svc["opensearch"].service, svc["opensearch"].port, svc["opensearch"].roles) == \
        ("opensearch-cluster-master", 9200, ("primary",))
    ui = svc["opensearch-dashboards"]
    assert (ui.service, ui.port) == (charts["opensearch-dashboards"].release, 5601)
    assert svc["loki"].roles == ()  # no Loki on any role: its checks are not applicable here
    assert stack_services()["loki"].roles == ("primary",)
    prof = profile(PROFILE)
    assert (prof.agent, prof.agent_service) == ("Vector", "vector")
    assert foreign_services(PROFILE) == {"loki", "promtail", "alloy"}
    assert foreign_services("promtail") == {"alloy", "opensearch", "opensearch-dashboards", "vector"}


def test_the_profile_s_images_are_derived_from_its_pins_and_preloaded():
    v = load_versions()
    images = preload_images(v, PROFILE)
    assert f"docker.io/opensearchproject/opensearch:{v.apps['opensearch']}" in images
    assert f"docker.io/opensearchproject/opensearch-dashboards:{v.apps['opensearch-dashboards']}" in images
    # vector chart 0.56.0: image.repository docker.io/timberio/vector, tag the appVersion.
    assert f"docker.io/timberio/vector:{v.apps['vector']}" in images
    assert v.apps["vector"] == "0.56.0-distroless-libc"
    assert not any("busybox:latest" in i or i.endswith("busybox") for i in images)
    default = preload_images(v)
    assert not any("opensearch" in i or "timberio" in i for i in default)  # the default list is unchanged
    raw = yaml.safe_load((STACK_DIR / "versions.yaml").read_text())
    for template in raw["profile_images"][PROFILE]:
        assert "{" in template, f"{template}: a literal tag, not a pin"


# The options each component of stack/values/vector.yaml may have at Vector 0.56.0: its config struct's serde fields
# plus the outer ones every source/transform/sink takes (a typo is a config error only when Vector starts).
# vectordotdev/vector v0.56.0: src/config/{source,transform,sink}.rs (SourceOuter, TransformOuter, SinkOuter),
# src/config/api.rs (Options), src/sources/kubernetes_logs/mod.rs (Config), src/sources/internal_metrics.rs,
# src/transforms/remap.rs (RemapConfig), src/sinks/elasticsearch/config.rs (ElasticsearchConfig, BulkConfig),
# src/sinks/elasticsearch/mod.rs (ElasticsearchApiVersion, ElasticsearchMode), src/sinks/prometheus/exporter.rs.
OUTER = {"sources": {"type", "proxy"}, "transforms": {"type", "inputs"},
         "sinks": {"type", "inputs", "healthcheck", "healthcheck_uri", "buffer", "proxy"}}
OPTIONS = {
    "kubernetes_logs": {"extra_label_selector", "extra_namespace_label_selector", "insert_namespace_fields",
                        "self_node_name", "extra_field_selector", "auto_partial_merge", "data_dir",
                        "pod_annotation_fields", "namespace_annotation_fields", "node_annotation_fields",
                        "include_paths_glob_patterns", "exclude_paths_glob_patterns", "read_from", "ignore_older_secs",
                        "max_read_bytes", "oldest_first", "max_line_bytes", "max_merged_line_bytes", "fingerprint_lines",
                        "glob_minimum_cooldown_ms", "ingestion_timestamp_field", "timezone", "kube_config_file",
                        "use_apiserver_cache", "delay_deletion_ms", "log_namespace", "internal_metrics",
                        "rotate_wait_secs"},
    "internal_metrics": {"scrape_interval_secs", "tags", "namespace"},
    "remap": {"source", "file", "files", "metric_tag_values", "timezone", "drop_on_error", "drop_on_abort",
              "reroute_dropped", "runtime"},
    "elasticsearch": {"endpoint", "endpoints", "doc_type", "api_version", "suppress_type_name", "request_retry_partial",
                      "id_key", "pipeline", "mode", "compression", "encoding", "batch", "request", "auth", "query", "aws",
                      "opensearch_service_type", "tls", "distribution", "bulk", "data_stream", "metrics",
                      "acknowledgements"},
    "prometheus_exporter": {"default_namespace", "address", "auth", "tls", "buckets", "quantiles",
                            "distributions_as_summaries", "flush_period_secs", "suppress_timestamp", "acknowledgements"},
}
ENUMS = {("elasticsearch", "api_version"): {"auto", "v6", "v7", "v8"},
         ("elasticsearch", "mode"): {"bulk", "normal", "data_stream"}}
BULK = {"action", "index", "template_fallback_index", "version", "version_type"}
TOP = {"data_dir", "api", "sources", "transforms", "sinks"}


def config_problems(config: dict) -> list[str]:
    """What Vector 0.56.0 would refuse in this config's components (unknown options, enum values), one line each."""
    problems = [f"unknown top-level key {k}" for k in set(config) - TOP]
    problems += [f"api.{k}: unknown" for k in set(config.get("api") or {}) - {"enabled", "address"}]
    for kind, outer in OUTER.items():
        for name, component in (config.get(kind) or {}).items():
            known_options = OPTIONS.get(component.get("type"))
            if known_options is None:
                problems.append(f"{kind}.{name}: type {component.get('type')!r} not in this table")
                continue
            problems += [f"{kind}.{name}.{k}: unknown option" for k in set(component) - outer - known_options]
            problems += [f"{kind}.{name}.{k}: {component[k]!r} not one of {sorted(allowed)}"
                         for (t, k), allowed in ENUMS.items() if t == component["type"] and k in component
                         and component[k] not in allowed]
            if component["type"] == "elasticsearch":
                problems += [f"{kind}.{name}.bulk.{k}: unknown option" for k in set(component.get("bulk") or {}) - BULK]
    return sorted(problems)


def test_vector_s_config_uses_only_options_vector_0_56_has(releases):
    assert config_problems(vector_config(releases[("workstation", "vector")])) == []


def test_the_option_check_names_a_typo_and_a_wrong_api_version(releases):
    config = vector_config(releases[("workstation", "vector")])
    config["sinks"]["opensearch"]["api_versoin"] = "v7"
    config["sinks"]["opensearch"]["mode"] = "datastream"
    config["sinks"]["opensearch"]["bulk"]["indx"] = "x"
    assert config_problems(config) == [
        "sinks.opensearch.api_versoin: unknown option",
        "sinks.opensearch.bulk.indx: unknown option",
        "sinks.opensearch.mode: 'datastream' not one of ['bulk', 'data_stream', 'normal']",
    ]
