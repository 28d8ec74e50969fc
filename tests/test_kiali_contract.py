"""FakeKiali held to kiali/kiali v2.29.0 (commit 0e41713f): every answer the suites and the client read, field by field.

Kiali v2.29.0 cannot be built here (the Go module proxy refuses the module at that commit), so the table below is
derived from its handlers and models, read at tag v2.29.0; each row cites file and function. When a row fails,
fix the fake, never the row. Go's encoding/json drops an `omitempty` field when it is false, "", or an empty map or
slice, but never a struct; a nil slice or map without `omitempty` is `null`.
"""

from __future__ import annotations

import base64
import json
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conformance.provision import plan
from conformance.provision.steps import Facts
from tests.fakes.kiali import FakeKiali
from tests.fakes.server import FakeServer, Response
from tests.proving_stack import kiali_spec

ABSENT = "<absent>"


@dataclass(frozen=True)
class Keys:
    """The object has exactly these keys."""

    names: frozenset[str]


@dataclass(frozen=True)
class Fact:
    scenario: str  # healthy | inaccessible (clustering.clusters entry without secret_name) | hidden | home-undetected
    request: str  # path under the web root, with its query
    path: tuple  # keys into the JSON; a dict selects the list element with those fields
    expected: Any  # a value, a type, Keys(...) or ABSENT
    source: str  # kiali/kiali v2.29.0 file and function


def K(*names: str) -> Keys:
    return Keys(frozenset(names))


CONFIG, NAMESPACES = "/api/config", "/api/namespaces"
REMOTE_WL = "/api/clusters/workloads?clusterName=workstation&health=false&istioResources=false"
STATUS = "/api/status"
TRACING, TRACES = "/api/tracing", "/api/namespaces/sample/services/helloworld/traces?clusterName=oke"
SLEEP = {"name": "sleep"}
SAMPLE = {"cluster": "workstation", "name": "sample"}
CP_NS = {"cluster": "oke", "name": "istio-system"}
TABLE = [
    # -- /api/config: handlers/config.go Config, PublicConfig; omitempty zero fields absent ----------------------
    Fact("healthy", CONFIG, (), K("authStrategy", "chatAI", "clusters", "clusterWideAccess", "controlPlanes",
                                  "deployment", "healthConfig", "istioAnnotations", "istioAPIInstalled",
                                  "istioGatewayInstalled", "istioIdentityDomain", "istioLabels",
                                  "istioStatusEnabled", "kialiFeatureFlags", "logLevel", "prometheus", "runMode"),
         "handlers/config.go PublicConfig (ambientEnabled, gatewayAPI*, ignoreHomeCluster, installationTag, runConfig: omitempty, zero here)"),
    Fact("healthy", CONFIG, ("authStrategy",), "anonymous", "handlers/config.go Config: conf.Auth.Strategy"),
    Fact("healthy", CONFIG, ("chatAI",), {"enabled": False, "defaultProvider": "", "providers": [], "store": {"enabled": False}},
         "handlers/config.go ChatAIConfig (no omitempty; Providers built as [])"),
    Fact("healthy", CONFIG, ("clusterWideAccess",), True, "handlers/config.go Config: conf.Deployment.ClusterWideAccess"),
    Fact("healthy", CONFIG, ("controlPlanes",), {"oke": "istio-system"}, "handlers/config.go Config: discovery.IsControlPlane per cached namespace"),
    Fact("healthy", CONFIG, ("deployment",), {}, "handlers/config.go DeploymentConfig: viewOnlyMode omitempty, false"),
    Fact("healthy", CONFIG, ("healthConfig", "compute"), {"duration": "5m", "refreshInterval": "3m", "timeout": "10m"},
         "config/config.go HealthCompute; kiali-operator v2.29.0 roles/default/kiali-deploy/defaults/main.yml health_config"),
    Fact("healthy", CONFIG, ("healthConfig", "rate", 0, "tolerance", 1),
         {"code": "4XX", "degraded": 10, "failure": 20, "protocol": "http", "direction": ".*"},
         "config/config.go AddHealthDefault (appended on config.Set), Tolerance has no omitempty in JSON"),
    Fact("healthy", CONFIG, ("istioAnnotations",), {"ambientAnnotation": "ambient.istio.io/redirection",
                                                    "ambientAnnotationEnabled": "enabled",
                                                    "istioInjectionAnnotation": "sidecar.istio.io/inject"},
         "handlers/config.go IstioAnnotations from config.AmbientAnnotation* / IstioInjectionAnnotation"),
    Fact("healthy", CONFIG, ("istioAPIInstalled",), True, "handlers/config.go Config: client.IsIstioAPI (kubernetes/kubernetes.go)"),
    Fact("healthy", CONFIG, ("istioGatewayInstalled",), True, "handlers/config.go Config: client.IsIstioGateway, networking.istio.io/v1 gateways served"),
    Fact("healthy", CONFIG, ("istioIdentityDomain",), "svc.cluster.local", "config/config.go ResolveIdentityDomain (trust domain cluster.local)"),
    Fact("healthy", CONFIG, ("istioLabels",), {"appLabelName": "", "versionLabelName": ""}, "config/config.go IstioLabels (two fields only)"),
    Fact("healthy", CONFIG, ("istioStatusEnabled",), True, "handlers/config.go Config: Istio.ComponentStatuses.Enabled (default true)"),
    Fact("healthy", CONFIG, ("kialiFeatureFlags",), K("authz", "clustering", "istioAnnotationAction", "istioInjectionAction",
                                                      "istioUpgradeAction", "uiDefaults", "validations"),
         "config/config.go KialiFeatureFlags: struct fields always, customWorkloadTypes/disabledFeatures omitempty and empty"),
    Fact("healthy", CONFIG, ("kialiFeatureFlags", "istioUpgradeAction"), False, "kiali-operator v2.29.0 defaults/main.yml istio_upgrade_action"),
    Fact("healthy", CONFIG, ("logLevel",), "info", "handlers/config.go Config: log.GetLogLevel"),
    Fact("healthy", CONFIG, ("prometheus",), K("enabled", "globalScrapeInterval", "storageTsdbRetention"),
         "handlers/config.go PrometheusConfig: disabledReason omitempty"),
    Fact("healthy", CONFIG, ("prometheus", "globalScrapeInterval"), int, "handlers/config.go getPrometheusConfig: seconds, int64"),
    Fact("healthy", CONFIG, ("runMode",), "app", "config/config.go RunModeApp"),
    Fact("healthy", CONFIG, ("clusters",), K("oke", "workstation"), "handlers/config.go Config: discovery.Clusters() by name"),
    Fact("healthy", CONFIG, ("clusters", "oke"), {
        "accessible": True, "apiEndpoint": "https://10.96.0.1:443", "isKialiHome": True, "name": "oke", "secretName": "",
        "kialiInstances": [{"namespace": "monitoring", "operatorResource": "", "serviceName": "kiali", "url": "",
                            "version": "v2.29.0"}]},
         "models/mesh.go KubeCluster/KialiInstance (no omitempty); istio/discovery.go Clusters, convertKialiServiceToInstance"),
    Fact("healthy", CONFIG, ("clusters", "workstation"), {
        "accessible": True, "apiEndpoint": "https://workstation:6443", "isKialiHome": False, "name": "workstation",
        "secretName": "kiali-remote-cluster-secret-workstation", "kialiInstances": None},
         "istio/discovery.go Clusters: SA client -> accessible, Host, SecretName; discoverKiali finds no Service -> nil"),
    Fact("inaccessible", CONFIG, ("clusters", "workstation"), {
        "accessible": False, "apiEndpoint": "", "isKialiHome": False, "name": "workstation", "secretName": "",
        "kialiInstances": None},
         "istio/discovery.go Clusters: clustering.clusters entry without SecretName -> Accessible false, nothing else"),
    Fact("inaccessible", CONFIG, ("controlPlanes",), {"oke": "istio-system"}, "handlers/config.go Config: only clusters with a user client"),
    Fact("hidden", CONFIG, ("clusters",), K("oke"), "kubernetes/cluster_secret.go getRemoteClusterInfosFromDir: a bad or absent secret loads no cluster"),
    Fact("home-undetected", CONFIG, ("clusters",), K("Kubernetes", "workstation"), "config/istio/util.go: home falls back to config.DefaultClusterID"),
    Fact("home-undetected", CONFIG, ("clusters", "Kubernetes", "isKialiHome"), True, "istio/discovery.go Clusters: name == KubernetesConfig.ClusterName"),
    # -- /api/namespaces: handlers/namespaces.go NamespaceList -> business/namespaces.go GetNamespaces ----------------
    Fact("healthy", NAMESPACES, (SAMPLE,), {
        "name": "sample", "cluster": "workstation", "isAmbient": False, "isControlPlane": False,
        "labels": {"kubernetes.io/metadata.name": "sample", "istio-injection": "enabled"}, "annotations": None,
        "revision": "default"},
         "models/namespace.go Namespace/CastNamespace: labels as the API server keeps them, nil annotations -> null"),
    Fact("healthy", NAMESPACES, ({"cluster": "workstation", "name": "istio-system"}, "revision"), ABSENT,
         "models/namespace.go Namespace: revision omitempty, no injection label"),
    Fact("healthy", NAMESPACES, (CP_NS, "isControlPlane"), True, "business/namespaces.go getNamespacesByCluster: GetControlPlaneNamespaces"),
    Fact("healthy", NAMESPACES, (CP_NS, "revision"), "default", "business/namespaces.go getNamespacesByCluster: control plane revision or DefaultRevisionLabel"),
    Fact("inaccessible", NAMESPACES, ({"cluster": "workstation"},), ABSENT, "business/namespaces.go GetNamespaces: userClients only; a remote's error is skipped"),
    # -- /api/clusters/workloads: handlers/workloads.go ClusterWorkloads -> business/workloads.go GetWorkloadList ---
    Fact("healthy", REMOTE_WL, (), K("cluster", "workloads", "validations"), "models/workload.go ClusterWorkloads"),
    Fact("healthy", REMOTE_WL, ("validations",), {}, "handlers/workloads.go ClusterWorkloads: IstioValidations{}, nothing merged without istioResources"),
    Fact("healthy", REMOTE_WL, ("workloads", SLEEP), K(
        "name", "namespace", "cluster", "gvk", "createdAt", "resourceVersion", "istioSidecar", "isAmbient", "isGateway",
        "isWaypoint", "isZtunnel", "additionalDetailSample", "labels", "appLabel", "versionLabel", "podCount",
        "annotations", "healthAnnotations", "istioReferences", "dashboardAnnotations", "serviceAccountNames",
        "templateLabels", "health", "waypointWorkloads", "ValidationKey", "ValidationVersion"),
         "models/workload.go WorkloadListItem: istioInjectionAnnotation/spireInfo/templateAnnotations omitempty; Validation* untagged"),
    Fact("healthy", REMOTE_WL, ("workloads", SLEEP, "gvk"), {"Group": "apps", "Version": "v1", "Kind": "Deployment"},
         "models/workload.go ParseDeployment: kubernetes.Deployments, schema.GroupVersionKind has no JSON tags"),
    Fact("healthy", REMOTE_WL, ("workloads", SLEEP, "cluster"), "workstation", "business/workloads.go GetWorkloadList: wItem.Cluster = cluster"),
    Fact("healthy", REMOTE_WL, ("workloads", SLEEP, "health"),
         {"requests": {"healthAnnotations": {}, "inbound": {}, "outbound": {}}, "workloadStatus": None},
         "business/workloads.go GetWorkloadList: EmptyWorkloadHealth when health=false (models/health.go)"),
    Fact("healthy", REMOTE_WL, ("workloads", SLEEP, "istioReferences"), [], "models/workload.go ParseWorkload: []*IstioValidationKey{}"),
    Fact("healthy", REMOTE_WL, ("workloads", SLEEP, "waypointWorkloads"), None, "models/workload.go ParseWorkload does not copy it: nil -> null"),
    Fact("healthy", REMOTE_WL, ("workloads", SLEEP, "ValidationKey"), "", "models/workload.go ParseWorkload does not copy it"),
    Fact("healthy", REMOTE_WL, ("workloads", SLEEP, "additionalDetailSample"), None, "models/workload.go AdditionalDetailSample (no omitempty)"),
    Fact("healthy", REMOTE_WL, ("workloads", SLEEP, "createdAt"), "2024-01-01T00:00:00Z", "models/util.go formatTime: RFC3339 UTC"),
    Fact("inaccessible", REMOTE_WL, (), {"cluster": "workstation", "workloads": [], "validations": {}},
         "handlers/workloads.go ClusterWorkloads: GetClusterNamespaces error ignored, no namespace -> 200"),
    Fact("healthy", "/api/clusters/workloads?clusterName=nowhere&health=false&istioResources=false", (),
         {"cluster": "nowhere", "workloads": [], "validations": {}}, "handlers/workloads.go ClusterWorkloads: unknown cluster -> 200, none"),
    Fact("healthy", "/api/clusters/workloads?health=false&istioResources=false", ("cluster",), "oke",
         "handlers/utils.go clusterNameFromQuery: defaults to KubernetesConfig.ClusterName"),
    # -- /api/status: handlers/root.go Root -> status/status.go Get ---------------------------------------------------
    Fact("healthy", STATUS, (), K("status", "externalServices", "warningMessages", "istioEnvironment"), "status/status.go StatusInfo"),
    Fact("healthy", STATUS, ("status",), K("Kiali container version", "Kiali version", "Kiali commit hash",
                                           "Disabled features", "Kiali state"), "status/status.go Get"),
    Fact("healthy", STATUS, ("status", "Kiali state"), "running", "status/status.go stateRunning"),
    # -- /api/tracing: handlers/tracing.go GetTracingInfo -> models.TracingInfo (no omitempty) ----------------------
    Fact("healthy", TRACING, (), K("enabled", "integration", "internalURL", "provider", "tempoConfig", "url",
                                   "namespaceSelector", "useWaypointName", "whiteListIstioSystem"), "models/tracing.go TracingInfo"),
    Fact("healthy", TRACING, ("enabled",), False, "config/config.go NewConfig: Tracing.Enabled false (the CR's default)"),
    Fact("healthy", TRACING, ("whiteListIstioSystem",), None, "handlers/tracing.go GetTracingInfo: the disabled branch sets nothing"),
    Fact("tracing", TRACING, ("integration",), True, "handlers/tracing.go GetTracingInfo: Integration = InternalURL != \"\""),
    Fact("tracing", TRACING, ("provider",), "jaeger", "config/config.go NewConfig: Provider JaegerProvider"),
    Fact("tracing", TRACING, ("namespaceSelector",), True, "config/config.go NewConfig: NamespaceSelector true"),
    Fact("tracing", TRACING, ("tempoConfig",), {"cacheCapacity": 200, "cacheEnabled": True},
         "config/config.go NewConfig TempoConfig; TempoConfig's fields are all omitempty"),
    # -- service traces: handlers/tracing.go ServiceTraces -> tracing/jaeger/http_client.go GetAppTracesHTTP ---------
    Fact("tracing", TRACES, (), K("data", "errors", "tracingServiceName"), "tracing/jaeger/model/types.go TracingResponse"),
    Fact("tracing", TRACES, ("tracingServiceName",), "helloworld.sample",
         "business/tracing.go tracingServiceName: namespace_selector -> util.BuildNameNSKey(app, namespace)"),
    Fact("tracing", TRACES, ("errors",), None, "TracingResponse.Errors has no omitempty; Jaeger's errors null stays nil"),
    Fact("healthy", STATUS, ("status", "Kiali version"), "v2.29.0", "status/status.go Get: buildInfo.Version (Makefile ldflags)"),
    Fact("healthy", STATUS, ("externalServices", {"name": "Kubernetes-workstation"}), K("name", "version", "tempoConfig"),
         "status/versions.go getKubernetesVersions: Kubernetes-<cluster>; models/status.go tempoConfig is a struct"),
    Fact("healthy", STATUS, ("externalServices", {"name": "Prometheus"}, "tempoConfig"), {}, "models/status.go ExternalServiceInfo"),
    Fact("healthy", STATUS, ("warningMessages",), [], "status/status.go Get: []string{}"),
    Fact("healthy", STATUS, ("istioEnvironment",), {"istioAPIEnabled": True}, "status/status.go IstioEnvironment"),
]


def setup(kiali: FakeKiali, scenario: str) -> None:
    {"healthy": lambda: None,
     "inaccessible": lambda: kiali.inaccessible.add("workstation"),
     "hidden": lambda: kiali.hidden.add("workstation"),
     "home-undetected": lambda: setattr(kiali, "home_name", "Kubernetes")}[scenario]()


def walk(doc: Any, path: tuple) -> Any:
    for step in path:
        if isinstance(step, dict):
            doc = next((e for e in doc if all(e.get(k) == v for k, v in step.items())), ABSENT)
        elif isinstance(step, int):
            doc = doc[step] if len(doc) > step else ABSENT
        else:
            doc = doc.get(step, ABSENT)
        if doc is ABSENT:
            return ABSENT
    return doc


class JaegerQuery(FakeServer):
    """What Jaeger's /api/traces answers for a service without traces (cmd/query/app/http_handler.go search)."""

    def __init__(self) -> None:
        super().__init__()
        self.route("GET", "/jaeger/api/traces", lambda r: Response(200, {"data": [], "total": 0, "limit": 0, "offset": 0,
                                                                         "errors": None}))


@lru_cache(maxsize=None)
def answer(scenario: str, request: str) -> tuple[int, str, Any]:
    """One fake per (scenario, request): the status, content type and body it answered."""
    with FakeKiali(kiali_spec()) as kiali, JaegerQuery() as jaeger:
        if scenario == "tracing":  # the CR's external_services.tracing on, internal_url at the query service
            kiali.tracing_url = f"{jaeger.url}/jaeger"
        else:
            setup(kiali, scenario)
        response = httpx.get(f"{kiali.url}/kiali{request}")
        return response.status_code, response.headers["content-type"], response.json()


def test_service_traces_without_tracing_is_503_with_kialis_error():
    """business/tracing.go client(): "tracing is not enabled"; handlers/tracing.go ServiceTraces: 503."""
    with FakeKiali(kiali_spec()) as kiali:
        response = httpx.get(f"{kiali.url}/kiali{TRACES}")
    assert (response.status_code, response.json()) == (503, {"error": "tracing is not enabled"})


def test_kiali_asks_jaeger_as_its_http_client_does():
    """prepareQuery: service <app>.<ns>, start/end in whole seconds as microseconds, tags {istio.cluster_id}, limit."""
    with FakeKiali(kiali_spec()) as kiali, JaegerQuery() as jaeger:
        kiali.tracing_url = f"{jaeger.url}/jaeger"
        httpx.get(f"{kiali.url}/kiali{TRACES}&startMicros=1700000000123456&limit=5")
        (asked,) = [r for r in jaeger.requests if r.path == "/jaeger/api/traces"]
    assert asked.arg("service") == "helloworld.sample"
    assert asked.arg("start") == "1700000000000000"
    assert json.loads(asked.arg("tags")) == {"istio.cluster_id": "oke"}  # models.IstioClusterTag
    assert asked.arg("limit") == "5"


@pytest.mark.parametrize("fact", TABLE, ids=lambda f: f"{f.scenario}:{f.request.split('?')[0]}:{'.'.join(map(str, f.path))}")
def test_fake_kiali_answers_as_v2_29_0(fact: Fact) -> None:
    status, content_type, body = answer(fact.scenario, fact.request)
    assert (status, content_type) == (200, "application/json")  # handlers/base.go RespondWithJSON
    got = walk(body, fact.path)
    if isinstance(fact.expected, Keys):
        assert isinstance(got, dict) and set(got) == fact.expected.names, (fact.source, got)
    elif isinstance(fact.expected, type):
        assert isinstance(got, fact.expected) and not isinstance(got, bool), (fact.source, got)
    else:
        assert got == fact.expected, fact.source


# -- The bring-up's Kiali CR and remote secret against kiali-operator v2.29.0 ------------------------------------
def test_the_remote_secret_is_what_the_operator_mounts_and_kiali_names_the_remote_by():
    """The operator mounts Secrets in the CR's namespace that match clustering.autodetect_secrets.label
    (roles/default/kiali-deploy/tasks/main.yml); Kiali names the cluster by the data key (kubernetes/client_factory.go
    NewClientFactory) and caches it by the kubeconfig's only cluster (cluster_secret.go newRemoteClusterInfo,
    cmd/server.go newManager): the two must be the same name, Istio's."""
    cr = yaml.safe_load((plan.MANIFESTS / "kiali.yaml").read_text())
    assert "istio_namespace" not in cr["spec"]  # CRD v2.29.0: "DEPRECATED AFTER v2.11 ... will be ignored"
    facts = Facts()
    facts.set("workstation.control_plane_ip", "172.18.0.3")
    facts.set("workstation.kiali_token_json", json.dumps({"data": {
        "token": base64.b64encode(b"t" * 40).decode(), "ca.crt": base64.b64encode(b"ca").decode()}}))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "secret.yaml"
        plan.write_kiali_remote_secret(path, "workstation", cr["metadata"]["namespace"], facts)
        secret = yaml.safe_load(path.read_text())
    key, value = cr["spec"]["clustering"]["autodetect_secrets"]["label"].split("=")
    assert secret["metadata"]["labels"] == {key: value} and secret["metadata"]["namespace"] == cr["metadata"]["namespace"]
    [data_key] = secret["stringData"]
    kubeconfig = yaml.safe_load(secret["stringData"][data_key])
    assert data_key == "workstation" and [c["name"] for c in kubeconfig["clusters"]] == [data_key]
    assert len(kubeconfig["users"]) >= 1  # cluster_secret.go: 0 users is an error
