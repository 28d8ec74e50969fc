"""FakeKiali held to kiali/kiali v2.29.0 (commit 0e41713f): the recording of the real server, replayed, and a table.

The recording (../shared/contracts/kiali-2.29.0: golden.json and its kiali_contract.py, imported from there, never
copied) holds the real server's answers in eight scenarios; the fake replays each with nothing forgiven. The table
below, derived from the handlers and models read at tag v2.29.0, keeps the facts the recording does not hold (other
cluster names, the inaccessible and home-undetected cases); each row cites file and function. When a row fails,
fix the fake, never the row. Go's encoding/json drops an `omitempty` field when it is false, "", or an empty map or
slice, but never a struct; a nil slice or map without `omitempty` is `null`.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import pytest
import yaml

from conformance.provision.commands import MANIFESTS
from conformance.provision.phases.stack import write_kiali_remote_secret
from conformance.provision.steps import Facts
from tests import web
from tests.fakes.kiali import FakeKiali, free_port
from tests.fakes.kubeapi import FakeKubeAPI
from tests.fakes.server import FakeServer, Response
from tests.proving_stack import kiali_spec
from tests.shared import shared

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
        "health", "waypointWorkloads", "ValidationKey", "ValidationVersion"),
         "models/workload.go WorkloadListItem: istioInjectionAnnotation/spireInfo/templateLabels/templateAnnotations "
         "omitempty and never set on list items (recorded); Validation* untagged"),
    Fact("healthy", REMOTE_WL, ("workloads", SLEEP, "dashboardAnnotations"), None,
         "models/workload.go ParseWorkload does not set it on list items: nil -> null (recorded)"),
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
    Fact("tracing", TRACING, ("tempoConfig",), {"cacheCapacity": 200, "cacheEnabled": True, "urlFormat": "grafana"},
         "config/config.go TempoConfig (omitempty fields); kiali-operator v2.29.0 defaults tempo_config.url_format grafana (recorded)"),
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
        response = web.get(f"{kiali.url}/kiali{request}")
        return response.status_code, response.headers["content-type"], response.json()


def test_service_traces_without_tracing_is_503_with_kialis_error():
    """business/tracing.go client(): "tracing is not enabled"; handlers/tracing.go ServiceTraces: 503."""
    with FakeKiali(kiali_spec()) as kiali:
        response = web.get(f"{kiali.url}/kiali{TRACES}")
    assert (response.status_code, response.json()) == (503, {"error": "tracing is not enabled"})


def test_kiali_asks_jaeger_as_its_http_client_does():
    """prepareQuery: service <app>.<ns>, start/end in whole seconds as microseconds, tags {istio.cluster_id}, limit."""
    with FakeKiali(kiali_spec()) as kiali, JaegerQuery() as jaeger:
        kiali.tracing_url = f"{jaeger.url}/jaeger"
        web.get(f"{kiali.url}/kiali{TRACES}&startMicros=1700000000123456&limit=5")
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
    cr = yaml.safe_load((MANIFESTS / "kiali.yaml").read_text())
    assert "istio_namespace" not in cr["spec"]  # CRD v2.29.0: "DEPRECATED AFTER v2.11 ... will be ignored"
    facts = Facts()
    facts.set("workstation.control_plane_ip", "172.18.0.3")
    facts.set("workstation.kiali_token_json", json.dumps({"data": {
        "token": base64.b64encode(b"t" * 40).decode(), "ca.crt": base64.b64encode(b"ca").decode()}}))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "secret.yaml"
        write_kiali_remote_secret(path, "workstation", cr["metadata"]["namespace"], facts)
        secret = yaml.safe_load(path.read_text())
    key, value = cr["spec"]["clustering"]["autodetect_secrets"]["label"].split("=")
    assert secret["metadata"]["labels"] == {key: value} and secret["metadata"]["namespace"] == cr["metadata"]["namespace"]
    [data_key] = secret["stringData"]
    kubeconfig = yaml.safe_load(secret["stringData"][data_key])
    assert data_key == "workstation" and [c["name"] for c in kubeconfig["clusters"]] == [data_key]
    assert len(kubeconfig["users"]) >= 1  # cluster_secret.go: 0 users is an error


# -- The recording of a real Kiali v2.29.0 (../shared/contracts/kiali-2.29.0), replayed -------------------------
# The fake runs with the recorded clusters as its spec and meets each scenario's fault as the real server did: through
# its remote API server (FakeKubeAPI) and its mounted remote secret, never through a switch of its own.
REMOTE_SECRET = "kiali-remote-cluster-secret-workstation"  # conformance.provision.phases.stack.write_kiali_remote_secret
KIALI_SA = "system:serviceaccount:monitoring:kiali-service-account"
TRACING_URL = "http://tracing.istio-system:80/jaeger"  # the tracing part's internal_url
ENDPOINTS = {"https://10.96.0.1:443": "<in-cluster API of the primary>"}
REMOTE_ENDPOINT = "<remote API server: https://CONTROL_PLANE_IP:6443>"


def recorded_spec(kiali_revision: str = "1") -> dict[str, dict]:
    """The clusters of the recording (golden.json README "How it was recorded"): no injector ran (no istio-proxy, so
    istioSidecar false but for a Deployment without pods), no istiod answered its port-forward, no Grafana."""
    plain = {"istioSidecar": False}
    istio = {"app.kubernetes.io/name": "istiod", "app.kubernetes.io/version": "1.29.6", "istio": "pilot",
             "istio.io/rev": "default", "sidecar.istio.io/inject": "false", "app": "istiod"}
    gateway = {"app": "istio-eastwestgateway", "istio": "eastwestgateway", "istio.io/rev": "default",
               "sidecar.istio.io/inject": "true", "topology.istio.io/network": "network1"}
    kiali = {"app": "kiali", "app.kubernetes.io/instance": "kiali", "app.kubernetes.io/name": "kiali",
             "app.kubernetes.io/part-of": "kiali", "app.kubernetes.io/version": "v2.29.0", "version": "v2.29.0"}
    injected, excluded = {"istio-injection": "enabled"}, {"istio-injection": "disabled"}
    return {
        "oke": {"home": True, "namespaces": {
            "default": {},
            "istio-system": {"controlPlane": True, "istiodHealth": "Unreachable", "workloads": [
                {"name": "istiod", "labels": istio, **plain},
                {"name": "istio-eastwestgateway", "labels": gateway, "isGateway": True, **plain}]},
            "monitoring": {"labels": excluded, "workloads": [
                {"name": "kiali", "labels": kiali, "serviceAccount": "kiali-service-account", **plain,
                 "annotations": {"deployment.kubernetes.io/revision": kiali_revision}}]},
            "sample": {"labels": injected, "workloads": [{"name": "helloworld", **plain}]}}},
        "workstation": {"namespaces": {
            "default": {},
            "istio-system": {"annotations": {"topology.istio.io/controlPlaneClusters": "oke"}},
            "monitoring": {"labels": excluded},
            "sample": {"labels": injected, "workloads": [{"name": "sleep", **plain},
                                                         {"name": "traffic", "podCount": 0}]}}},
    }


def remote_kubeconfig(server: str, token: str) -> str:
    """The kubeconfig the bring-up writes into the remote secret (phases.stack.write_kiali_remote_secret), at `server`."""
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "workstation",
                           "clusters": [{"name": "workstation", "cluster": {"server": server}}],
                           "contexts": [{"name": "workstation", "context": {"cluster": "workstation", "user": "workstation"}}],
                           "users": [{"name": "workstation", "user": {"token": token}}]})


class TracesQuery(FakeServer):
    """Jaeger's /api/traces holding the tracing check's two traces (server and client sidecar), in its JSON shape."""

    def __init__(self) -> None:
        super().__init__()
        self.route("GET", "/jaeger/api/traces", lambda r: Response(200, {"data": [self._trace(i) for i in (1, 2)],
                                                                         "total": 0, "limit": 0, "offset": 0, "errors": None}))

    @staticmethod
    def _trace(n: int) -> dict[str, Any]:
        span = {"traceID": f"{n:032x}", "spanID": f"{n:016x}", "operationName": "helloworld.sample.svc.cluster.local:5000/*",
                "references": [], "startTime": 1_700_000_000_000_000 + n, "duration": 1000 + n, "logs": [],
                "processID": "p1", "warnings": None,
                "tags": [{"key": "istio.cluster_id", "type": "string", "value": "oke"}]}
        client = {**span, "spanID": f"{n + 100:016x}", "processID": "p2"}
        return {"traceID": span["traceID"], "spans": [span, client], "warnings": None,
                "processes": {"p1": {"serviceName": "helloworld.sample", "tags": []},
                              "p2": {"serviceName": "sleep.sample", "tags": []}}}


@dataclass
class Recorded:
    """FakeKiali on the recorded clusters: the remote's API server, its mounted secret, a Jaeger."""

    kiali: FakeKiali
    remote: Any  # FakeKubeAPI
    secrets: dict[str, dict[str, str]]
    jaeger: TracesQuery

    def endpoints(self) -> dict[str, str]:
        return {**ENDPOINTS, self.remote.url: REMOTE_ENDPOINT}


def meet(ground: Recorded, scenario: str) -> None:
    """Bring the scenario about as the recording did (its README, "Scenarios")."""
    kiali, remote, secrets = ground.kiali, ground.remote, ground.secrets
    if scenario == "remote-secret-deleted-kiali-running":
        secrets.clear()  # deleted on oke; nothing restarts Kiali
    elif scenario == "remote-secret-absent":
        secrets.clear()
        kiali.restart()  # the operator's next reconcile
    elif scenario == "remote-token-revoked":
        remote.tokens.clear()  # the token Secret deleted on the remote: its API server answers 401
    elif scenario == "remote-token-invalid-at-start":
        secrets[REMOTE_SECRET] = {"workstation": remote_kubeconfig(remote.url, "not-a-token-workstation-issued")}
        kiali.restart()
    elif scenario == "remote-unreachable-at-start":
        remote.stop()  # the secret's server refuses connections
        kiali.restart()
    elif scenario.startswith("tracing-"):
        # The README's "Stability": the recording moved Kiali's pod to the host network before tracing-enabled.
        kiali.clusters = recorded_spec(kiali_revision="2" if scenario == "tracing-enabled" else "1")
        kiali.tracing_url = TRACING_URL
        up = scenario == "tracing-enabled"
        kiali.hosts["tracing.istio-system:80"] = ground.jaeger.url if up else f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    with FakeKubeAPI("workstation") as remote, TracesQuery() as jaeger:
        remote.tokens["kiali-sa-token"] = KIALI_SA
        secrets = {REMOTE_SECRET: {"workstation": remote_kubeconfig(remote.url, "kiali-sa-token")}}
        kiali = FakeKiali(recorded_spec(), grafana_version=None, mounts=lambda: copy.deepcopy(secrets))
        with kiali:
            yield Recorded(kiali, remote, secrets, jaeger)


@pytest.fixture(scope="module")
def contract() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kiali_contract", shared("contracts", "kiali-2.29.0", "kiali_contract.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCENARIOS = ["healthy", "remote-secret-deleted-kiali-running", "remote-secret-absent", "remote-token-revoked",
             "remote-token-invalid-at-start", "remote-unreachable-at-start", "tracing-enabled", "tracing-jaeger-down"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_fake_kiali_answers_as_the_recorded_v2_29_0(scenario: str, recorded: Recorded, contract: ModuleType,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every answer of every recorded scenario, as `kiali_contract.py diff` compares them (nothing forgiven)."""
    golden = shared("contracts", "kiali-2.29.0", "golden.json")
    endpoints = recorded.endpoints()
    meet(recorded, scenario)
    report = tmp_path / "report.json"
    same = contract.diff(str(golden), f"{recorded.kiali.url}/kiali", scenario, str(report), endpoints)
    result = json.loads(report.read_text())
    assert same, (f"{result['identical']}/{result['answers']} answers identical, {result['values_equal']}/"
                  f"{result['values_compared']} values:\n{capsys.readouterr().out}")
    note = json.loads(golden.read_text())["scenarios"][scenario]["note"]
    if recorded.kiali.exited:  # the fatal line is the recorded one, up to the dialled address
        assert recorded.kiali.exited.split(": Get ")[0] in note
        assert recorded.kiali.log_lines[-1].split(" ", 1)[1] == f"FTL {recorded.kiali.exited}"


def test_a_revoked_remote_is_logged_as_the_real_one_logs_it(recorded: Recorded) -> None:
    """log: `Error fetching Namespaces for cluster [workstation]: Unauthorized` (recorded, remote-token-revoked)."""
    meet(recorded, "remote-token-revoked")
    web.get(f"{recorded.kiali.url}/kiali/api/namespaces")
    assert recorded.kiali.log_lines[-1].endswith("ERR Error fetching Namespaces for cluster [workstation]: Unauthorized")
