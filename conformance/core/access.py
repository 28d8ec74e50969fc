"""How to reach a service of a cluster: the topology's URL override, else the API server's service proxy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, TypeVar

from conformance.core.discovery import Located, ServiceAbsent, locate
from conformance.core.http import HTTPService, ServiceError
from conformance.core.kube import AccessProof, KubeAccess, Permission
from conformance.core.outcomes import NotApplicable, Unobservable
from conformance.core.redact import register_secret
from conformance.core.stack import Placement, StackService, stack_namespace, stack_pod_namespaces, stack_services
from conformance.core.topology import Cluster, Topology

T = TypeVar("T")

SERVICE_TITLES = {"prometheus": "Prometheus", "loki": "Loki", "grafana": "Grafana", "kiali": "Kiali", "promtail": "Promtail",
                  "alertmanager": "Alertmanager", "pushgateway": "Pushgateway", "alloy": "Alloy", "jaeger": "Jaeger",
                  "helloworld": "sample client → helloworld", "kube-state-metrics": "kube-state-metrics",
                  "event-exporter": "event exporter", "istiod": "istiod", "vector": "Vector", "opensearch": "OpenSearch",
                  "opensearch-dashboards": "OpenSearch Dashboards"}


class DeclaredAbsent(ServiceAbsent, NotApplicable):
    """The topology says the stack has no such service here (`absent:`) or runs none on this role."""


class NoKubeAccess(ServiceAbsent):
    """The run found, before any check, that this cluster's API server cannot be used."""


@dataclass
class Endpoint:
    """One reachable service: its HTTP API, plus credentials for a login if it needs one."""

    http: HTTPService
    via: str  # "proxy" or "url"
    login: tuple[str, str] | None = None  # (user, password) for a session login (Grafana behind the proxy)


def service_title(cluster: Cluster, service: str) -> str:
    """How messages name a service, e.g. 'workstation Prometheus'."""
    return f"{cluster.name} {SERVICE_TITLES.get(service, service)}"


def read_permissions(namespaces: Iterable[str] = ()) -> list[Permission]:
    """What every check that reads a cluster through its API server needs in each namespace its services live in
    (the bring-up's namespace when none is given)."""
    spaces = list(dict.fromkeys(namespaces)) or [stack_namespace()]
    return [p for ns in spaces for p in (Permission("get", "services/proxy", ns), Permission("list", "pods", ns))]


def placed_namespaces(cluster: Cluster) -> list[str]:
    """The namespaces the topology places services in (services.<name>.namespace)."""
    return sorted({p.namespace for p in cluster.placements.values() if p.namespace})


def write_permissions() -> list[Permission]:
    """What the checks that write (canary pods, ConfigMaps, events in their own namespaces) need besides."""
    return [Permission("create", "namespaces"), Permission("delete", "namespaces")]


@dataclass
class Access:
    """Resolves (cluster, service) to an Endpoint for every cluster of a topology.

    `proofs` are what the run found of each API server before any check (kube.AccessProof): a cluster
    whose API server cannot be used ends every check that needs it at once, naming the cause.
    """

    topology: Topology
    proofs: dict[str, AccessProof] = field(default_factory=dict)
    # (cluster, service) -> where the run found it before the first check (conformance/probes/inventory.py), or why not
    found: dict[tuple[str, str], Located | Unobservable] = field(default_factory=dict)
    _kube: dict[str, KubeAccess] = field(default_factory=dict, init=False, repr=False)

    def kube(self, cluster: Cluster) -> KubeAccess:
        """The cluster's API server; DeclaredAbsent for an endpoints cluster (the provider says it has none),
        NoKubeAccess for one the run found unusable."""
        if not cluster.has_kube:
            raise DeclaredAbsent(f"cluster {cluster.name} has provider endpoints: no Kubernetes API access")
        proof = self.proofs.get(cluster.name)
        if proof is not None and not proof.ok:
            raise NoKubeAccess(f"not run: needs {proof.summary}")
        if cluster.name not in self._kube:
            self._kube[cluster.name] = KubeAccess(cluster)
        return self._kube[cluster.name]

    def kube_or_none(self, cluster: Cluster) -> KubeAccess | None:
        """The cluster's API server, or None where the run has none (a diagnosis that can do without it)."""
        try:
            return self.kube(cluster)
        except Unobservable:
            return None

    def client_or_none(self, cluster: Cluster, service: str, client: Callable[[HTTPService], T]) -> T | None:
        """A client of service on cluster, or None where the topology gives no way to it (a diagnosis aside)."""
        try:
            return client(self.endpoint(cluster, service).http)
        except ServiceAbsent:
            return None

    def denied(self, cluster: Cluster, permissions: list[Permission]) -> str | None:
        """Why the run's credentials may not do these on cluster (from its access proof), or None."""
        proof = self.proofs.get(cluster.name)
        lacking = [str(p) for p in permissions if proof is not None and proof.denies(p)]
        if not lacking:
            return None
        return f"not run: the credentials for {cluster.name} ({proof.server}) may not {', '.join(lacking)}"

    def endpoint(self, cluster: Cluster, service: str) -> Endpoint:
        """The way to reach service on cluster; ServiceAbsent when the topology gives none."""
        title = service_title(cluster, service)
        if service in cluster.absent:
            raise DeclaredAbsent(f"{title}: declared absent (topology {self.topology.path}: absent: [{service}])")
        override = cluster.services.get(service)
        if override is not None:
            auth = override.auth
            headers = auth.headers() if auth else {}
            basic = auth.basic() if auth else None
            for value in list(headers.values()) + list(basic or ()):
                register_secret(value.removeprefix("Bearer "))
            return Endpoint(HTTPService(title, override.url, headers=headers, auth=basic), via="url")
        spec = self.located(cluster, service).spec
        kube = self.kube(cluster)
        http = kube.http(title, spec.proxy_path())
        login = None
        if spec.credentials_secret is not None:
            secret = spec.credentials_secret
            user = kube.secret_value(spec.namespace, secret.name, secret.user_key)
            login = (user, kube.secret_value(spec.namespace, secret.name, secret.password_key))
        return Endpoint(http, via="proxy", login=login)

    def located(self, cluster: Cluster, service: str) -> Located:
        """Where service runs in cluster (topology placement, bring-up name, or its labels); NotFound or Ambiguous."""
        spec = self.bring_up(cluster, service)
        title = service_title(cluster, service)
        if not cluster.has_kube:
            raise ServiceAbsent(f"{title}: not in the topology (provider endpoints lists no services.{service}; "
                                f"declare it with absent: [{service}] if the stack has none)")
        kube = self.kube(cluster)
        key = (cluster.name, service)
        if key not in self.found:
            try:
                self.found[key] = locate(kube, spec, cluster.placements.get(service, Placement()), title,
                                         str(self.topology.path))
            except Unobservable as e:
                self.found[key] = e
            except ServiceError as e:  # refused the look itself: the proof's words where it foresaw the refusal
                guess = self.denied(cluster, [Permission("get", "services/proxy", spec.namespace)])
                if getattr(e, "status", 0) in (401, 403) and guess:
                    raise NoKubeAccess(guess) from None
                raise
        found = self.found[key]
        if isinstance(found, Unobservable):
            raise found
        # Judged where it was found: the run proves the reads in the namespaces its services live in (found_namespaces)
        if denied := self.denied(cluster, [Permission("get", "services/proxy", found.spec.namespace)]):
            raise NoKubeAccess(denied)
        return found

    def prove_where_found(self, cluster: Cluster, proof: AccessProof) -> AccessProof:
        """proof with the reads proven again in the namespaces cluster's services were found in: the first look's
        guesses (the topology's placements, else the bring-up's namespace) give way to where the services are."""
        more = self.kube(cluster).prove(read_permissions(self.found_namespaces(cluster)))
        guessed = {str(p) for p in read_permissions(placed_namespaces(cluster))}
        denied = tuple(dict.fromkeys([d for d in proof.denied if d not in guessed] + list(more.denied)))
        return AccessProof(proof.cluster, proof.server, more.problem, denied, round(proof.seconds + more.seconds, 3))

    def found_namespaces(self, cluster: Cluster) -> list[str]:
        """The namespaces this run found cluster's services in (the stack inventory's look)."""
        return sorted({v.spec.namespace for (c, _), v in self.found.items()
                       if c == cluster.name and isinstance(v, Located)})

    def service_spec(self, cluster: Cluster, service: str) -> StackService:
        """Where service runs (namespace, Service, pods) as found; the bring-up's row when it cannot be found here."""
        try:
            return self.located(cluster, service).spec
        except Unobservable:
            return stack_services(profile=self.topology.profile)[service]

    def stack_namespaces(self, cluster: Cluster) -> list[str]:
        """The bring-up's stack namespaces and every namespace a service of this cluster was found in."""
        found = [v.spec.namespace for (c, _), v in self.found.items() if c == cluster.name and isinstance(v, Located)]
        return list(dict.fromkeys([*stack_pod_namespaces(), *sorted(found)]))

    def bring_up(self, cluster: Cluster, service: str) -> StackService:
        """The bring-up's row for service (stack/services.yaml); DeclaredAbsent where the stack runs none."""
        spec = stack_services(profile=self.topology.profile)[service]
        if cluster.role not in spec.roles:
            raise DeclaredAbsent(f"the stack runs no {service} on {cluster.role} cluster {cluster.name}")
        return spec
