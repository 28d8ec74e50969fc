"""Where a service of the stack runs in a cluster: the topology's placement, the bring-up's name, else the labels and
objects its chart or operator puts on it, in any namespace (docs/real-stack.md#discovery cites each rule)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable
from urllib.parse import urlsplit

from conformance.core.kube import KubeAccess
from conformance.core.on_use import imported_on_use
from conformance.core.outcomes import Unobservable
from conformance.core.stack import CredentialsSecret, Placement, StackService

kubernetes = imported_on_use("kubernetes")

ADMIN_KEYS = ("admin-user", "admin-password")  # the grafana chart's admin Secret (templates/secret.yaml)


class ServiceAbsent(Unobservable):
    """The topology gives no way to reach this service: the checks that need it cannot observe their hop."""


class NotFound(ServiceAbsent):
    """No Service of the cluster is the one the checks need: they cannot observe their hop."""


class Ambiguous(Unobservable):
    """Two or more Services could be the one the checks need; a topology key picks one. Never taken for absent:
    a check that does without an absent service still stops here, not observed."""


@dataclass(frozen=True)
class Located:
    """A service found in a cluster, and how: 'topology', 'bring-up name' or the discovery rule that matched."""

    spec: StackService
    how: str

    @property
    def where(self) -> str:
        if self.spec.workload:
            return f"{self.spec.namespace}/{self.spec.service} ({self.spec.workload})"
        return f"{self.spec.namespace}/{self.spec.service}:{self.spec.port}"

    def to_json(self) -> dict:
        s = self.spec
        secret = s.credentials_secret
        return {"how": self.how, "namespace": s.namespace, "service": s.service, "port": s.port, "scheme": s.scheme,
                "web_root": s.web_root, "pod_selector": s.pod_selector,
                "secret": [secret.name, secret.user_key, secret.password_key] if secret else None}

    @classmethod
    def from_json(cls, base: StackService, doc: dict) -> "Located":
        secret = CredentialsSecret(*doc["secret"]) if doc.get("secret") else None
        return cls(replace(base, namespace=doc["namespace"], service=doc["service"], port=int(doc["port"]),
                           scheme=doc["scheme"], web_root=doc["web_root"], pod_selector=doc["pod_selector"],
                           credentials_secret=secret), doc["how"])


@dataclass(frozen=True)
class Rule:
    """How one service is recognised: `looks_for` says it in the messages; `find` lists the candidates."""

    looks_for: str
    find: Callable[[KubeAccess, StackService], list[Located]]


def _port(svc: Any, names: tuple[str, ...]) -> int | None:
    """The Service port named first in `names`, else its first port; None when it has none."""
    ports = svc.spec.ports or []
    for name in names:
        for p in ports:
            if p.name == name:
                return int(p.port)
    return int(ports[0].port) if ports else None


def _release(labels: dict[str, str]) -> str:
    return labels.get("app.kubernetes.io/instance") or labels.get("release") or ""


def by_labels(selectors: tuple[str, ...], ports: tuple[str, ...] = (), web_root: str | None = None,
              pods: str | None = None, require_port: str | None = None,
              cluster_ip: bool = False) -> Callable[[KubeAccess, StackService], list[Located]]:
    """Services carrying one of `selectors` (in order of preference), one per release: a chart's headless twin
    (`variant: headless`; with `cluster_ip`, any Service without one, as the twin has the same labels) and a second
    Service of the same release (a component ranked lower) are not candidates."""

    def find(kube: KubeAccess, base: StackService) -> list[Located]:
        seen: dict[tuple[str, str], Located] = {}
        for selector in selectors:
            items = kube.call(f"list Services labelled {selector}", kube.core().list_service_for_all_namespaces,
                              label_selector=selector).items
            for svc in items:
                labels = svc.metadata.labels or {}
                port = _port(svc, ports)
                if labels.get("variant") == "headless" or port is None:
                    continue
                if cluster_ip and svc.spec.cluster_ip == "None":
                    continue
                if require_port and not any(p.name == require_port for p in svc.spec.ports or []):
                    continue
                ns, release = svc.metadata.namespace, _release(labels) or svc.metadata.name
                selector_of_pods = f"{pods},app.kubernetes.io/instance={release}" if pods else base.pod_selector
                spec = replace(base, namespace=ns, service=svc.metadata.name, port=port,
                               web_root=base.web_root if web_root is None else web_root, pod_selector=selector_of_pods)
                seen.setdefault((ns, release), Located(spec, f"labels {selector}"))
        return list(seen.values())

    return find


def any_of(*finds: Callable[[KubeAccess, StackService], list[Located]]) -> Callable[[KubeAccess, StackService], list[Located]]:
    """Every finder's candidates, in order: a service that an addon or a chart may install, each labelled its own way."""

    def find(kube: KubeAccess, base: StackService) -> list[Located]:
        return [c for f in finds for c in f(kube, base)]

    return find


def by_workload(selectors: tuple[str, ...]) -> Callable[[KubeAccess, StackService], list[Located]]:
    """Deployments carrying one of `selectors`, one per release: for a service the suite finds by its workload, as
    its chart renders no Service by default (the event exporter)."""

    def find(kube: KubeAccess, base: StackService) -> list[Located]:
        seen: dict[tuple[str, str], Located] = {}
        apps = kubernetes.client.AppsV1Api(kube.api_client)
        for selector in selectors:
            items = kube.call(f"list Deployments labelled {selector}", apps.list_deployment_for_all_namespaces,
                              label_selector=selector).items
            for d in items:
                ns, labels = d.metadata.namespace, d.metadata.labels or {}
                spec = replace(base, namespace=ns, service=d.metadata.name)
                seen.setdefault((ns, _release(labels) or d.metadata.name), Located(spec, f"labels {selector}"))
        return list(seen.values())

    return find


def _route_prefix(spec: dict) -> str:
    """The web root the operator gives Prometheus or Alertmanager: spec.routePrefix, else the path of spec.externalUrl."""
    prefix = spec.get("routePrefix") or urlsplit(spec.get("externalUrl") or "").path or "/"
    return prefix.rstrip("/")


def by_operator(plural: str, governing: str, port: int, pod_label: str) -> Callable[[KubeAccess, StackService], list[Located]]:
    """One candidate per custom resource of prometheus-operator: its namespace's governing Service, web port."""

    def find(kube: KubeAccess, base: StackService) -> list[Located]:
        found = kube.call(f"list {plural} (monitoring.coreos.com/v1)", kube.custom().list_cluster_custom_object,
                          "monitoring.coreos.com", "v1", plural, ok=(404,))
        out = []
        for obj in (found or {}).get("items", []):
            meta, spec = obj["metadata"], obj.get("spec") or {}
            pods = f"app.kubernetes.io/name={pod_label},operator.prometheus.io/name={meta['name']}"
            located = replace(base, namespace=meta["namespace"], service=governing, port=port,
                              web_root=_route_prefix(spec), pod_selector=pods if base.pod_selector else None)
            out.append(Located(located, f"{obj.get('kind', plural)} {meta['namespace']}/{meta['name']}"))
        return out

    return find


RULES: dict[str, Rule] = {
    "prometheus": Rule("Prometheus resources (monitoring.coreos.com/v1) and their prometheus-operated Service",
                       by_operator("prometheuses", "prometheus-operated", 9090, "prometheus")),
    "alertmanager": Rule("Alertmanager resources (monitoring.coreos.com/v1) and their alertmanager-operated Service",
                         by_operator("alertmanagers", "alertmanager-operated", 9093, "alertmanager")),
    "loki": Rule("Services labelled app.kubernetes.io/name=loki with component single-binary, gateway or read "
                 "(Loki chart), or app=loki (loki-stack)",
                 by_labels(("app.kubernetes.io/name=loki,app.kubernetes.io/component=single-binary",
                            "app.kubernetes.io/name=loki,app.kubernetes.io/component=gateway",
                            "app.kubernetes.io/name=loki,app.kubernetes.io/component=read",
                            "app=loki"), ports=("http-metrics",))),
    "grafana": Rule("Services labelled app.kubernetes.io/name=grafana (grafana chart)",
                    by_labels(("app.kubernetes.io/name=grafana",), ports=("http-web", "service"),
                              pods="app.kubernetes.io/name=grafana")),
    "kiali": Rule("Services labelled app.kubernetes.io/name=kiali (kiali-operator)",
                  by_labels(("app.kubernetes.io/name=kiali",), ports=("http", "tcp"))),
    "promtail": Rule("Services labelled app.kubernetes.io/name=promtail (promtail chart, service.enabled)",
                     by_labels(("app.kubernetes.io/name=promtail",), ports=("http-metrics",),
                               pods="app.kubernetes.io/name=promtail")),
    "alloy": Rule("Services labelled app.kubernetes.io/name=alloy (Alloy chart)",
                  by_labels(("app.kubernetes.io/name=alloy",), ports=("http-metrics",),
                            pods="app.kubernetes.io/name=alloy")),
    "pushgateway": Rule("Services labelled app.kubernetes.io/name=prometheus-pushgateway (prometheus-pushgateway chart)",
                        by_labels(("app.kubernetes.io/name=prometheus-pushgateway",), ports=("http",))),
    "kube-state-metrics": Rule("Services labelled app.kubernetes.io/name=kube-state-metrics (kube-state-metrics chart)",
                               by_labels(("app.kubernetes.io/name=kube-state-metrics",), ports=("http",))),
    "event-exporter": Rule("Deployments labelled app.kubernetes.io/name=kubernetes-event-exporter "
                           "(Bitnami kubernetes-event-exporter chart)",
                           by_workload(("app.kubernetes.io/name=kubernetes-event-exporter",))),
    # The vector-opensearch profile (issue 20): each chart renders a headless twin with the same labels.
    "opensearch": Rule("Services labelled app.kubernetes.io/name=opensearch with a cluster IP (opensearch chart; "
                       "not its -headless twin)",
                       by_labels(("app.kubernetes.io/name=opensearch",), ports=("http",),
                                 pods="app.kubernetes.io/name=opensearch", cluster_ip=True)),
    "opensearch-dashboards": Rule("Services labelled app.kubernetes.io/name=opensearch-dashboards "
                                  "(opensearch-dashboards chart)",
                                  by_labels(("app.kubernetes.io/name=opensearch-dashboards",), ports=("http",),
                                            pods="app.kubernetes.io/name=opensearch-dashboards")),
    "vector": Rule("Services labelled app.kubernetes.io/name=vector,app.kubernetes.io/component=Agent with a cluster "
                   "IP (vector chart, role Agent; not its -headless twin)",
                   by_labels(("app.kubernetes.io/name=vector,app.kubernetes.io/component=Agent",),
                             ports=("prom-exporter",), pods="app.kubernetes.io/name=vector", cluster_ip=True)),
    "istiod": Rule("Services labelled app=istiod with a port http-monitoring (Istio's istio-discovery chart)",
                   by_labels(("app=istiod",), ports=("http-monitoring",), require_port="http-monitoring")),
    # The addon serves the query under /jaeger (the services.yaml row); the chart runs Jaeger 2's own configuration,
    # whose jaeger_query sets no base_path: the web root is /.
    "jaeger": Rule("Services labelled app=jaeger with a port http-query (Istio's jaeger addon), nor "
                   "app.kubernetes.io/name=jaeger,app.kubernetes.io/component=all-in-one with a port http-query "
                   "(jaeger chart)",
                   any_of(by_labels(("app=jaeger",), ports=("http-query",), require_port="http-query"),
                          by_labels(("app.kubernetes.io/name=jaeger,app.kubernetes.io/component=all-in-one",),
                                    ports=("http-query",), web_root="", require_port="http-query"))),
}


def _read_service(kube: KubeAccess, namespace: str, name: str, workload: str | None = None) -> Any:
    if workload:
        apps = kubernetes.client.AppsV1Api(kube.api_client)
        return kube.call(f"read {workload} {namespace}/{name}", apps.read_namespaced_deployment, name, namespace,
                         ok=(404,))
    return kube.call(f"read Service {namespace}/{name}", kube.core().read_namespaced_service, name, namespace,
                     ok=(404,))


def _with_placement(found: Located, placement: Placement) -> Located:
    """Grafana's admin Secret: the topology's, else the one the grafana chart names after its Service."""
    spec = found.spec
    if spec.key != "grafana":
        return found
    secret = placement.credentials_secret or (
        spec.credentials_secret if found.how == "bring-up name" else CredentialsSecret(spec.service, *ADMIN_KEYS))
    return Located(replace(spec, credentials_secret=secret), found.how)


def locate(kube: KubeAccess, base: StackService, placement: Placement, title: str, topology: str) -> Located:
    """The service `base` (the bring-up's row of stack/services.yaml) in kube's cluster; NotFound or Ambiguous."""
    return _with_placement(_locate(kube, base, placement, title, topology), placement)


def _locate(kube: KubeAccess, base: StackService, placement: Placement, title: str, topology: str) -> Located:
    key, cluster = base.key, kube.cluster.name
    if placement.service:
        ns = placement.namespace or base.namespace
        svc = _read_service(kube, ns, placement.service, base.workload)
        if svc is None:
            raise NotFound(f"{title}: no {base.workload or 'Service'} {ns}/{placement.service} (topology {topology}: "
                           f"services.{key} of cluster {cluster})")
        port = placement.port or (base.port if base.workload else _port(svc, ()) or base.port)
        return Located(replace(base, namespace=ns, service=placement.service, port=port), "topology")
    if (placement.namespace in (None, base.namespace)
            and _read_service(kube, base.namespace, base.service, base.workload) is not None):
        return Located(replace(base, port=placement.port or base.port), "bring-up name")
    rule = RULES.get(key)
    candidates = rule.find(kube, base) if rule else []
    if placement.namespace:
        candidates = [c for c in candidates if c.spec.namespace == placement.namespace]
    if placement.port:
        candidates = [Located(replace(c.spec, port=placement.port), c.how) for c in candidates]
    if len(candidates) == 1:
        return candidates[0]
    where = f"in namespace {placement.namespace}" if placement.namespace else "in any namespace"
    if not candidates:
        looked = rule.looks_for if rule else "no discovery rule"
        kind = base.workload or "Service"
        raise NotFound(f"{title}: not found: no {kind} {base.namespace}/{base.service} (the bring-up's name) and "
                       f"no {looked} {where}; name it in topology {topology} under services.{key} of cluster {cluster} "
                       f"(namespace, service, port or url)")
    named = ", ".join(f"{c.where} ({c.how})" for c in candidates)
    namespaces = {c.spec.namespace for c in candidates}
    pick = f"services.{key}.namespace" if len(namespaces) == len(candidates) else f"services.{key}.namespace and .service"
    raise Ambiguous(f"{title}: {len(candidates)} candidates {where}: {named}; pick one with {pick} "
                    f"of cluster {cluster} in topology {topology}")
