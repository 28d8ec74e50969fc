"""Discovery: each service found by the objects its pinned chart or operator renders, in any namespace; absent and
ambiguous give one line naming what was looked for and the topology key that picks one (docs/real-stack.md#discovery)."""

from __future__ import annotations

import pytest

from conformance.core.access import Access
from conformance.core.discovery import RULES, Ambiguous, NotFound
from conformance.core.errors import ConfigError
from conformance.core.topology import load_topology
from tests.fakes.kubeapi import FakeKubeAPI
from tests.suite_runner import write_topology


def access_for(tmp_path, api: FakeKubeAPI, services: dict | None = None, **extra) -> tuple[Access, object]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    cluster = {"name": "oke", "role": "primary", "provider": "existing", "context": "kind-oke",
               "kubeconfig": str(kubeconfig), **({"services": services} if services else {})}
    topology = load_topology(write_topology(tmp_path, [cluster], **extra))
    return Access(topology), topology.primary


# The objects each pinned chart or operator renders for a release installed under another name (labels and ports
# as the template writes them; the citations are the rows of docs/real-stack.md#discovery).

def kps_prometheus(api: FakeKubeAPI, namespace: str = "observability", release: str = "kps") -> None:
    """kube-prometheus-stack 88.5.3 templates/prometheus/prometheus.yaml: the Prometheus resource <fullname>-prometheus;
    prometheus-operator v0.93.0 pkg/prometheus/common.go BuildStatefulSetService: its governing Service."""
    api.add_prometheus(namespace, f"{release}-kube-prometheus-stack-prometheus")
    api.add_service(namespace, "prometheus-operated", port=9090, port_name="web",
                    labels={"operated-prometheus": "true", "managed-by": "prometheus-operator"})


def kps_alertmanager(api: FakeKubeAPI, namespace: str = "observability", release: str = "kps") -> None:
    """kube-prometheus-stack 88.5.3 templates/alertmanager/alertmanager.yaml; prometheus-operator v0.93.0
    pkg/alertmanager/statefulset.go makeStatefulSetService (alertmanager-operated, port web 9093)."""
    api.add_alertmanager(namespace, f"{release}-kube-prometheus-stack-alertmanager")
    api.add_service(namespace, "alertmanager-operated", ports=[
        {"name": "web", "port": 9093}, {"name": "tcp-mesh", "port": 9094}], labels={"operated-alertmanager": "true"})


def loki_chart(api: FakeKubeAPI, namespace: str = "logging", release: str = "loki", component: str = "single-binary",
               name: str | None = None) -> None:
    """Loki chart 18.11.0 templates/_service.tpl (via templates/monolithic/service.yaml, gateway/, read/): the Service
    and its headless twin, loki.labels + app.kubernetes.io/component, port http-metrics 3100."""
    labels = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": release,
              "app.kubernetes.io/component": component}
    name = name or release
    ports = [{"name": "http-metrics", "port": 3100}, {"name": "grpc", "port": 9095}]
    api.add_service(namespace, name, ports=ports, labels=labels)
    api.add_service(namespace, f"{name}-headless", ports=ports, labels={**labels, "variant": "headless"})


def loki_stack(api: FakeKubeAPI, namespace: str = "logs", release: str = "mylogs") -> None:
    """loki chart 2.16.0 (loki-stack 2.10.3) templates/service.yaml and service-headless.yaml: labels app=loki,
    release=<release>, port http-metrics 3100."""
    labels = {"app": "loki", "release": release, "chart": "loki-2.16.0", "heritage": "Helm"}
    api.add_service(namespace, release, port=3100, port_name="http-metrics", labels=labels)
    api.add_service(namespace, f"{release}-headless", port=3100, port_name="http-metrics",
                    labels={**labels, "variant": "headless"})


def grafana_chart(api: FakeKubeAPI, namespace: str = "grafana", release: str = "grafana") -> None:
    """grafana chart 12.11.1 templates/service.yaml (grafana.labels: app.kubernetes.io/name=grafana, instance), port
    service.portName `service` 80; templates/secret.yaml: Secret <fullname> with admin-user, admin-password."""
    api.add_service(namespace, release, port=80, port_name="service", target_port=3000,
                    labels={"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": release})
    api.add_secret(namespace, release, {"admin-user": "admin", "admin-password": "pw-discovered"})


def kiali_operator(api: FakeKubeAPI, namespace: str = "istio-system") -> None:
    """kiali-operator v2.29.0 roles/default/kiali-deploy/templates/kubernetes/service.yaml: Service kiali, port http
    20001 and http-metrics 9090, labels app.kubernetes.io/name=kiali."""
    api.add_service(namespace, "kiali", ports=[{"name": "http", "port": 20001}, {"name": "http-metrics", "port": 9090}],
                    labels={"app": "kiali", "app.kubernetes.io/name": "kiali", "app.kubernetes.io/instance": "kiali"})


def promtail_chart(api: FakeKubeAPI, namespace: str = "logs", release: str = "agent") -> None:
    """promtail chart 6.17.1 templates/service-metrics.yaml (service.enabled): <fullname>-metrics, headless,
    port http-metrics 3101, promtail.labels."""
    api.add_service(namespace, f"{release}-promtail-metrics", port=3101, port_name="http-metrics",
                    labels={"app.kubernetes.io/name": "promtail", "app.kubernetes.io/instance": release})


def alloy_chart(api: FakeKubeAPI, namespace: str = "agents", release: str = "collector") -> None:
    """Alloy chart 1.11.1 templates/service.yaml: alloy.fullname, port http-metrics 12345, alloy.labels."""
    api.add_service(namespace, release, port=12345, port_name="http-metrics",
                    labels={"app.kubernetes.io/name": "alloy", "app.kubernetes.io/instance": release,
                            "app.kubernetes.io/component": "networking"})


def pushgateway_chart(api: FakeKubeAPI, namespace: str = "bench", release: str = "pgw") -> None:
    """prometheus-pushgateway chart 3.1.1 templates/service.yaml: <fullname>, port http 9091, app.kubernetes.io/name."""
    api.add_service(namespace, f"{release}-prometheus-pushgateway", port=9091, port_name="http",
                    labels={"app.kubernetes.io/name": "prometheus-pushgateway", "app.kubernetes.io/instance": release})


def jaeger_addon(api: FakeKubeAPI, namespace: str = "tracing-ns") -> None:
    """Istio 1.29.6 samples/addons/jaeger.yaml: Services tracing (app=jaeger, http-query 80), zipkin and jaeger-collector."""
    api.add_service(namespace, "tracing", ports=[{"name": "http-query", "port": 80, "targetPort": 16686},
                                                 {"name": "grpc-query", "port": 16685}], labels={"app": "jaeger"})
    api.add_service(namespace, "zipkin", port=9411, port_name="http-query", labels={"name": "zipkin"})
    api.add_service(namespace, "jaeger-collector", port=14268, port_name="jaeger-collector-http", labels={"app": "jaeger"})


JAEGER_CHART_PORTS = [  # jaegertracing/helm-charts jaeger-4.2.3 (appVersion 2.13.0) templates/service.yaml, in order
    {"name": "zk-compact-trft", "port": 5775}, {"name": "config-rest", "port": 5778},
    {"name": "jg-compact-trft", "port": 6831}, {"name": "jg-binary-trft", "port": 6832},
    {"name": "http-zipkin", "port": 9411}, {"name": "grpc-http", "port": 14250}, {"name": "c-tchan-trft", "port": 14267},
    {"name": "http-c-binary-trft", "port": 14268}, {"name": "otlp-grpc", "port": 4317}, {"name": "otlp-http", "port": 4318},
    {"name": "http-query", "port": 16686}, {"name": "grpc-query", "port": 16685}]


def jaeger_chart(api: FakeKubeAPI, namespace: str = "observability", release: str = "jaeger") -> None:
    """jaegertracing/helm-charts jaeger-4.2.3 templates/service.yaml: the all-in-one's one Service, jaeger.fullname (the
    release when it contains `jaeger`), labels jaeger.labels (_helpers.tpl) and component all-in-one, no headless twin."""
    name = release if "jaeger" in release else f"{release}-jaeger"
    api.add_service(namespace, name, ports=[dict(p, targetPort=p["port"]) for p in JAEGER_CHART_PORTS],
                    labels={"helm.sh/chart": "jaeger-4.2.3", "app.kubernetes.io/name": "jaeger",
                            "app.kubernetes.io/instance": release, "app.kubernetes.io/version": "2.13.0",
                            "app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/component": "all-in-one"})


def ksm_chart(api: FakeKubeAPI, namespace: str = "observability", release: str = "kps") -> None:
    """kube-state-metrics chart 8.4.0 templates/service.yaml: Service kube-state-metrics.fullname (<release>-kube-state-
    metrics), port http 8080; _helpers.tpl kube-state-metrics.labels (releaseLabel: kube-prometheus-stack sets it)."""
    api.add_service(namespace, f"{release}-kube-state-metrics", port=8080, port_name="http", labels={
        "helm.sh/chart": "kube-state-metrics-8.4.0", "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/component": "metrics", "app.kubernetes.io/part-of": "kube-state-metrics",
        "app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": release,
        "app.kubernetes.io/version": "2.20.0", "release": release})


def istiod_chart(api: FakeKubeAPI, namespace: str = "istio-system", revision: str = "") -> None:
    """istio 1.29.6 manifests/charts/istio-control/istio-discovery/templates/service.yaml: Service istiod[-<revision>],
    labels app=istiod, istio=pilot, istio.io/rev, release; ports grpc-xds, https-dns, https-webhook, http-monitoring 15014."""
    name = f"istiod-{revision}" if revision else "istiod"
    api.add_service(namespace, name, ports=[
        {"name": "grpc-xds", "port": 15010}, {"name": "https-dns", "port": 15012},
        {"name": "https-webhook", "port": 443, "targetPort": 15017}, {"name": "http-monitoring", "port": 15014}],
        labels={"istio.io/rev": revision or "default", "operator.istio.io/component": "Pilot", "app": "istiod",
                "istio": "pilot", "release": name, "app.kubernetes.io/name": "istiod"})


def event_exporter_chart(api: FakeKubeAPI, namespace: str = "events", release: str = "evx") -> None:
    """Bitnami kubernetes-event-exporter 3.0.2 templates/deployment.yaml: Deployment common.names.fullname
    (<release>-kubernetes-event-exporter), labels common.labels.standard (bitnami/common 2.19.1 _labels.tpl) plus
    component kubernetes-event-exporter; no Service (templates/metrics-service.yaml only with metrics.enabled)."""
    api.add_deployment(namespace, f"{release}-kubernetes-event-exporter", labels={
        "app.kubernetes.io/name": "kubernetes-event-exporter", "helm.sh/chart": "kubernetes-event-exporter-3.0.2",
        "app.kubernetes.io/instance": release, "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/version": "1.6.1", "app.kubernetes.io/component": "kubernetes-event-exporter"})


def opensearch_chart(api: FakeKubeAPI, namespace: str = "search", release: str = "store",
                     cluster_name: str = "logs") -> None:
    """opensearch chart 3.6.0 templates/service.yaml: Service opensearch.serviceName (<clusterName>-<nodeGroup>, not
    the release) and its `-headless` twin (clusterIP None) with the same opensearch.labels; ports http 9200,
    transport 9300, metrics 9600 (a twin alone is not found: test_only_headless_is_not_found_naming_the_twin)."""
    labels = {"helm.sh/chart": "opensearch-3.6.0", "app.kubernetes.io/name": "opensearch",
              "app.kubernetes.io/instance": release, "app.kubernetes.io/version": "3.6.0",
              "app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/component": f"{cluster_name}-master"}
    ports = [{"name": "http", "port": 9200}, {"name": "transport", "port": 9300}, {"name": "metrics", "port": 9600}]
    api.add_service(namespace, f"{cluster_name}-master-headless", ports=ports, labels=labels, headless=True)
    api.add_service(namespace, f"{cluster_name}-master", ports=ports, labels=labels)


def opensearch_dashboards_chart(api: FakeKubeAPI, namespace: str = "search", release: str = "ui") -> None:
    """opensearch-dashboards chart 3.6.0 templates/service.yaml: Service opensearch-dashboards.fullname
    (<release>-opensearch-dashboards), ports http 5601 and metrics 9601, opensearch-dashboards.labels."""
    api.add_service(namespace, f"{release}-opensearch-dashboards", ports=[
        {"name": "http", "port": 5601}, {"name": "metrics", "port": 9601}], labels={
        "helm.sh/chart": "opensearch-dashboards-3.6.0", "app.kubernetes.io/name": "opensearch-dashboards",
        "app.kubernetes.io/instance": release, "app.kubernetes.io/version": "3.6.0",
        "app.kubernetes.io/managed-by": "Helm"})


def vector_chart(api: FakeKubeAPI, namespace: str = "agents", release: str = "shipper", role: str = "Agent") -> None:
    """vector chart 0.56.0 templates/service.yaml and service-headless.yaml (clusterIP None, same vector.labels):
    vector.fullname (<release>-vector); ports from customConfig (_helpers.tpl vector.ports): prom-exporter 9090, api
    8686; vector.selectorLabels always add app.kubernetes.io/component=<role>."""
    labels = {"helm.sh/chart": "vector-0.56.0", "app.kubernetes.io/name": "vector",
              "app.kubernetes.io/instance": release, "app.kubernetes.io/component": role,
              "app.kubernetes.io/version": "0.56.0-distroless-libc", "app.kubernetes.io/managed-by": "Helm"}
    ports = [{"name": "api", "port": 8686}, {"name": "prom-exporter", "port": 9090}]
    api.add_service(namespace, f"{release}-vector-headless", ports=ports, labels=labels, headless=True)
    api.add_service(namespace, f"{release}-vector", ports=ports, labels=labels)


RULE_CASES = [
    # service, objects, expected namespace/service:port, web root
    ("prometheus", kps_prometheus, "observability/prometheus-operated:9090", ""),
    ("alertmanager", kps_alertmanager, "observability/alertmanager-operated:9093", ""),
    ("loki", loki_chart, "logging/loki:3100", ""),
    ("loki", lambda api: loki_chart(api, component="gateway", name="loki-gateway"), "logging/loki-gateway:3100", ""),
    ("loki", lambda api: loki_chart(api, component="read", name="loki-read"), "logging/loki-read:3100", ""),
    ("loki", loki_stack, "logs/mylogs:3100", ""),
    ("grafana", grafana_chart, "grafana/grafana:80", ""),
    ("kiali", kiali_operator, "istio-system/kiali:20001", "/kiali"),
    ("promtail", promtail_chart, "logs/agent-promtail-metrics:3101", ""),
    ("alloy", alloy_chart, "agents/collector:12345", ""),
    ("pushgateway", pushgateway_chart, "bench/pgw-prometheus-pushgateway:9091", ""),
    ("jaeger", jaeger_addon, "tracing-ns/tracing:80", "/jaeger"),
    ("jaeger", jaeger_chart, "observability/jaeger:16686", ""),
    ("jaeger", lambda api: jaeger_chart(api, namespace="traces", release="tr"), "traces/tr-jaeger:16686", ""),
    ("kube-state-metrics", ksm_chart, "observability/kps-kube-state-metrics:8080", ""),
    ("opensearch", opensearch_chart, "search/logs-master:9200", ""),
    ("opensearch-dashboards", opensearch_dashboards_chart, "search/ui-opensearch-dashboards:5601", ""),
    ("vector", vector_chart, "agents/shipper-vector:9090", ""),
    ("istiod", lambda api: istiod_chart(api, namespace="mesh-control"), "mesh-control/istiod:15014", ""),
    ("istiod", lambda api: istiod_chart(api, namespace="mesh", revision="1-29"), "mesh/istiod-1-29:15014", ""),
]


@pytest.mark.parametrize("service,objects,where,web_root", RULE_CASES,
                         ids=[f"{c[0]}-{c[2].split('/')[1]}" for c in RULE_CASES])
def test_each_rule_finds_the_chart_objects_under_other_names(tmp_path, service, objects, where, web_root):
    with FakeKubeAPI("oke") as api:
        objects(api)
        access, oke = access_for(tmp_path, api, profile="alloy") if service == "alloy" else access_for(tmp_path, api)
        found = access.located(oke, service)
        assert found.where == where and found.spec.web_root == web_root
        assert found.how != "bring-up name"
        endpoint = access.endpoint(oke, service)
        ns, rest = where.split("/")
        name, port = rest.split(":")
        assert endpoint.http.base_url == f"{api.url}/api/v1/namespaces/{ns}/services/http:{name}:{port}/proxy{web_root}"


def test_event_exporter_found_by_its_deployment(tmp_path):
    """The event exporter's chart renders no Service by default: its Deployment is found, and where it runs."""
    with FakeKubeAPI("oke") as api:
        event_exporter_chart(api)
        access, oke = access_for(tmp_path, api)
        found = access.located(oke, "event-exporter")
    assert (found.where, found.how) == ("events/evx-kubernetes-event-exporter (Deployment)",
                                        "labels app.kubernetes.io/name=kubernetes-event-exporter")


def test_the_bring_up_names_of_the_exporter_win(tmp_path):
    with FakeKubeAPI("oke") as api:
        api.add_deployment("monitoring", "kubernetes-event-exporter")
        event_exporter_chart(api)
        access, oke = access_for(tmp_path, api)
        found = access.located(oke, "event-exporter")
    assert (found.where, found.how) == ("monitoring/kubernetes-event-exporter (Deployment)", "bring-up name")


def test_istiod_without_its_monitoring_port_is_not_a_candidate(tmp_path):
    """The remote profile's istiod Service points at the primary's control plane and has no http-monitoring port."""
    with FakeKubeAPI("oke") as api:
        api.add_service("istio-system", "istiod-remote", port=15012, port_name="tcp-istiod", labels={"app": "istiod"})
        access, oke = access_for(tmp_path, api)
        with pytest.raises(NotFound, match="no Services labelled app=istiod with a port http-monitoring"):
            access.located(oke, "istiod")


@pytest.mark.parametrize("service", sorted({c[0] for c in RULE_CASES} | {"event-exporter"}))
def test_absent_service_names_what_was_looked_for(tmp_path, service):
    with FakeKubeAPI("oke") as api:
        api.add_service("other", "unrelated", port=8080, labels={"app": "unrelated"})
        access, oke = access_for(tmp_path, api, profile="alloy") if service == "alloy" else access_for(tmp_path, api)
        with pytest.raises(NotFound) as caught:
            access.endpoint(oke, service)
    message = str(caught.value)
    assert "\n" not in message
    kind = "Deployment" if service == "event-exporter" else "Service"
    assert message.startswith("oke ") and f": not found: no {kind} " in message and RULES[service].looks_for in message
    assert "in any namespace" in message and f"services.{service} of cluster oke" in message


def test_jaeger_absent_names_the_addons_labels_and_the_charts(tmp_path):
    with FakeKubeAPI("oke") as api:
        api.add_service("observability", "jaeger-collector", port=4317, port_name="otlp-grpc",
                        labels={"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/component": "collector"})
        access, oke = access_for(tmp_path, api)
        with pytest.raises(NotFound) as caught:
            access.endpoint(oke, "jaeger")
    assert str(caught.value).startswith(
        "oke Jaeger: not found: no Service istio-system/tracing (the bring-up's name) and no Services labelled "
        "app=jaeger with a port http-query (Istio's jaeger addon), nor app.kubernetes.io/name=jaeger,"
        "app.kubernetes.io/component=all-in-one with a port http-query (jaeger chart) in any namespace; name it in "
        "topology "), caught.value


def test_jaeger_from_the_addon_and_the_chart_gives_one_line_and_the_namespace_picks_one(tmp_path):
    with FakeKubeAPI("oke") as api:
        jaeger_addon(api)
        jaeger_chart(api)
        access, oke = access_for(tmp_path, api)
        with pytest.raises(Ambiguous) as caught:
            access.located(oke, "jaeger")
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(
            "oke Jaeger: 2 candidates in any namespace: tracing-ns/tracing:80 (labels app=jaeger), observability/jaeger:"
            "16686 (labels app.kubernetes.io/name=jaeger,app.kubernetes.io/component=all-in-one); pick one with "
            "services.jaeger.namespace of cluster oke in topology "), message
        picked, oke = access_for(tmp_path / "picked", api, services={"jaeger": {"namespace": "observability"}})
        found = picked.located(oke, "jaeger")
    assert (found.where, found.spec.web_root) == ("observability/jaeger:16686", "")


def test_prometheus_rule_reads_the_route_prefix_and_the_pods(tmp_path):
    with FakeKubeAPI("oke") as api:
        api.add_prometheus("observability", "main", spec={"routePrefix": "/prom/"})
        access, oke = access_for(tmp_path, api)
        spec = access.located(oke, "prometheus").spec
    assert spec.web_root == "/prom"
    assert spec.pod_selector == "app.kubernetes.io/name=prometheus,operator.prometheus.io/name=main"


def test_grafana_found_by_labels_logs_in_with_its_chart_secret(tmp_path):
    with FakeKubeAPI("oke") as api:
        grafana_chart(api)
        access, oke = access_for(tmp_path, api)
        endpoint = access.endpoint(oke, "grafana")
    assert endpoint.login == ("admin", "pw-discovered")


def test_grafana_secret_named_by_the_topology(tmp_path):
    with FakeKubeAPI("oke") as api:
        grafana_chart(api)
        api.add_secret("grafana", "ops-admin", {"user": "ops", "pass": "pw-ops"})
        access, oke = access_for(tmp_path, api, services={"grafana": {"credentials_secret": {
            "name": "ops-admin", "user_key": "user", "password_key": "pass"}}})
        assert access.endpoint(oke, "grafana").login == ("ops", "pw-ops")


def test_two_prometheus_resources_give_one_line_and_a_topology_key_picks_one(tmp_path):
    with FakeKubeAPI("oke") as api:
        kps_prometheus(api)
        kps_prometheus(api, namespace="team-a", release="team")
        access, oke = access_for(tmp_path, api)
        with pytest.raises(Ambiguous) as caught:
            access.endpoint(oke, "prometheus")
        message = str(caught.value)
        assert "\n" not in message
        assert ("oke Prometheus: 2 candidates in any namespace: observability/prometheus-operated:9090 (Prometheus "
                "observability/kps-kube-prometheus-stack-prometheus), team-a/prometheus-operated:9090 (Prometheus "
                "team-a/team-kube-prometheus-stack-prometheus); pick one with services.prometheus.namespace of "
                "cluster oke in topology") in message
        picked, oke = access_for(tmp_path / "picked", api, services={"prometheus": {"namespace": "team-a"}})
        assert picked.located(oke, "prometheus").where == "team-a/prometheus-operated:9090"


def test_two_in_one_namespace_ask_for_the_service_too(tmp_path):
    with FakeKubeAPI("oke") as api:
        grafana_chart(api, release="blue")
        grafana_chart(api, release="green")
        access, oke = access_for(tmp_path, api)
        with pytest.raises(Ambiguous, match=r"pick one with services.grafana.namespace and .service of cluster oke"):
            access.endpoint(oke, "grafana")
        picked, oke = access_for(tmp_path / "p", api, services={"grafana": {"namespace": "grafana", "service": "green"}})
        assert picked.located(oke, "grafana").where == "grafana/green:80"


def test_one_release_with_several_components_is_one_candidate(tmp_path):
    """The Loki chart's single binary with its gateway is one Loki: the single binary is asked."""
    with FakeKubeAPI("oke") as api:
        loki_chart(api)
        loki_chart(api, component="gateway", name="loki-gateway")
        access, oke = access_for(tmp_path, api)
        assert access.located(oke, "loki").where == "logging/loki:3100"


def test_the_headless_twins_are_not_candidates_and_the_pods_are_the_release(tmp_path):
    """OpenSearch and Vector each render a -headless twin with the same labels: the Service with a cluster IP is the
    one candidate; its pods are the chart's name and the release; a Vector Aggregator is not the agent."""
    with FakeKubeAPI("oke") as api:
        opensearch_chart(api)
        vector_chart(api)
        vector_chart(api, release="central", role="Aggregator")
        access, oke = access_for(tmp_path, api, profile="vector-opensearch")
        opensearch, vector = access.located(oke, "opensearch"), access.located(oke, "vector")
    assert (opensearch.where, opensearch.how) == ("search/logs-master:9200", "labels app.kubernetes.io/name=opensearch")
    assert opensearch.spec.pod_selector == "app.kubernetes.io/name=opensearch,app.kubernetes.io/instance=store"
    assert vector.where == "agents/shipper-vector:9090"
    assert vector.spec.pod_selector == "app.kubernetes.io/name=vector,app.kubernetes.io/instance=shipper"


def test_only_headless_is_not_found_naming_the_twin(tmp_path):
    with FakeKubeAPI("oke") as api:
        api.add_service("search", "logs-master-headless", port=9200, labels={"app.kubernetes.io/name": "opensearch"},
                        headless=True)
        access, oke = access_for(tmp_path, api, profile="vector-opensearch")
        with pytest.raises(NotFound) as caught:
            access.located(oke, "opensearch")
    assert str(caught.value).startswith(
        "oke OpenSearch: not found: no Service monitoring/opensearch-cluster-master (the bring-up's name) and no "
        "Services labelled app.kubernetes.io/name=opensearch with a cluster IP (opensearch chart; not its -headless "
        "twin) in any namespace; name it in topology ")


@pytest.mark.parametrize("service,objects,other,where", [
    ("opensearch", opensearch_chart, lambda api: opensearch_chart(api, namespace="team", release="t", cluster_name="t"),
     ("search/logs-master:9200 (labels app.kubernetes.io/name=opensearch)",
      "team/t-master:9200 (labels app.kubernetes.io/name=opensearch)")),
    ("vector", vector_chart, lambda api: vector_chart(api, namespace="team", release="t"),
     ("agents/shipper-vector:9090 (labels app.kubernetes.io/name=vector,app.kubernetes.io/component=Agent)",
      "team/t-vector:9090 (labels app.kubernetes.io/name=vector,app.kubernetes.io/component=Agent)")),
])
def test_two_releases_with_twins_give_one_line_and_the_namespace_picks_one(tmp_path, service, objects, other, where):
    """Two releases (each with its headless twin): one line naming the two Services, not the twins, and the key."""
    with FakeKubeAPI("oke") as api:
        objects(api)
        other(api)
        access, oke = access_for(tmp_path, api, profile="vector-opensearch")
        with pytest.raises(Ambiguous) as caught:
            access.located(oke, service)
        message = str(caught.value)
        assert "\n" not in message and "-headless" not in message
        assert (f"2 candidates in any namespace: {where[0]}, {where[1]}; pick one with services.{service}.namespace "
                "of cluster oke in topology ") in message
        picked, oke = access_for(tmp_path / "picked", api, profile="vector-opensearch",
                                 services={service: {"namespace": "team"}})
        assert picked.located(oke, service).where == where[1].split(" ")[0]


def test_the_bring_up_names_win(tmp_path):
    """The project's own bring-up is found by its names, even beside another release that discovery would find."""
    with FakeKubeAPI("oke") as api:
        api.add_stack_services()
        kps_prometheus(api)
        access, oke = access_for(tmp_path, api)
        found = access.located(oke, "prometheus")
    assert (found.where, found.how) == ("monitoring/kube-prometheus-stack-prometheus:9090", "bring-up name")


def test_a_topology_service_that_is_not_there(tmp_path):
    with FakeKubeAPI("oke") as api:
        access, oke = access_for(tmp_path, api, services={"loki": {"namespace": "logging", "service": "lokii", "port": 80}})
        with pytest.raises(NotFound, match=r"^oke Loki: no Service logging/lokii \(topology .*: services.loki of cluster oke\)$"):
            access.endpoint(oke, "loki")


@pytest.mark.parametrize("spec,message", [
    ({"url": "http://x", "namespace": "a"}, r"services.loki.namespace: give either url or where"),
    ({"service": "loki"}, r"services.loki.namespace: a service is named with its namespace"),
    ({"namespace": "Bad_Name"}, r"services.loki.namespace: expected a Kubernetes name"),
    ({"namespace": "a", "port": "80"}, r"services.loki.port: expected a port number"),
    ({"credentials_secret": "s"}, r"services.loki.credentials_secret: only grafana"),
])
def test_placement_keys_are_checked_in_one_line(tmp_path, spec, message):
    cluster = {"name": "oke", "role": "primary", "provider": "existing", "context": "c", "services": {"loki": spec}}
    with pytest.raises(ConfigError, match=message):
        load_topology(write_topology(tmp_path, [cluster]))


def test_inventory_names_where_each_service_was_found_and_its_version(tmp_path):
    """Loki found by the Loki chart's labels answers its build info; a Grafana nowhere is one NOT FOUND line;
    the drift from the pins is listed (the fake runs 2.9.3 = loki-stack's pin, so Loki has none)."""
    from conformance.probes.inventory import lines, take_inventory
    from conformance.core.versions import load_versions
    from tests.fakes.loki import FakeLoki

    with FakeLoki() as loki, FakeKubeAPI("oke") as api:
        api.add_service("logging", "loki", ports=[{"name": "http-metrics", "port": 3100, "backend": loki.url}],
                        labels={"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": "loki",
                                "app.kubernetes.io/component": "single-binary"})
        access, oke = access_for(tmp_path, api)
        entries = {e.service: e for e in take_inventory(access)}
        text = lines(list(entries.values()), load_versions(), "promtail")
    assert entries["loki"].where == "logging/loki:3100" and entries["loki"].version == "2.9.3"
    assert entries["grafana"].problem.startswith("oke Grafana: not found: no Service monitoring/kube-prometheus-stack-grafana")
    assert "  oke loki                 logging/loki:3100 [labels app.kubernetes.io/name=loki,app.kubernetes.io/" \
           "component=single-binary]  2.9.3" in text
    assert not any(line.startswith("  oke loki:") for line in text)  # no drift row for Loki
    assert any(line.startswith("  oke grafana:") is False and "NOT FOUND" in line for line in text)


def test_inventory_asks_istiod_its_version_and_says_why_kube_state_metrics_is_not_asked(tmp_path):
    """istiod's /version on http-monitoring is "<version>-<git revision>-<build status>" (istio 1.29.6
    pkg/version/version.go); kube-state-metrics' build info is on a port its Service has only with selfMonitor."""
    import yaml

    from conformance.probes.inventory import take_inventory
    from conformance.core.topology import load_topology
    from tests.fakes.server import FakeServer, Response

    with FakeServer() as istiod, FakeKubeAPI("oke") as api:
        istiod.route("GET", r"/version", lambda request: Response(200, "1.29.6-0123abcd-Clean", "text/plain"))
        api.add_service("mesh-control", "istiod", ports=[{"name": "grpc-xds", "port": 15010},
                                                         {"name": "http-monitoring", "port": 15014, "backend": istiod.url}],
                        labels={"app": "istiod", "istio": "pilot"})
        ksm_chart(api)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        path = tmp_path / "topology.yaml"
        path.write_text(yaml.safe_dump({"parts": ["kube-state-metrics"], "clusters": [
            {"name": "oke", "role": "primary", "provider": "existing", "context": "kind-oke",
             "kubeconfig": str(kubeconfig)}]}))
        entries = {e.service: e for e in take_inventory(Access(load_topology(path)))}
    assert (entries["istiod"].where, entries["istiod"].version) == ("mesh-control/istiod:15014", "1.29.6")
    ksm = entries["kube-state-metrics"]
    assert ksm.where == "observability/kps-kube-state-metrics:8080" and not ksm.version
    assert ksm.line().endswith("version unknown (kube_state_metrics_build_info is on its telemetry port only "
                               "(v2.20.0 pkg/app/server.go), which the chart's Service has only with selfMonitor.enabled)")
    assert "event-exporter" not in entries  # the events part is not listed
