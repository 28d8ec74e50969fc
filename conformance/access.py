"""How to reach a service of a cluster: the topology's URL override, else the API server's service proxy."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes.client.exceptions import ApiException

from conformance.http import HTTPService
from conformance.kube import KubeAccess
from conformance.outcomes import PreconditionUnmet
from conformance.redact import register_secret
from conformance.stack import stack_services
from conformance.topology import Cluster, Topology

SERVICE_TITLES = {"prometheus": "Prometheus", "loki": "Loki", "grafana": "Grafana", "kiali": "Kiali", "promtail": "Promtail",
                  "alertmanager": "Alertmanager", "pushgateway": "Pushgateway", "alloy": "Alloy", "jaeger": "Jaeger",
                  "helloworld": "sample client → helloworld"}


class ServiceAbsent(Exception):
    """The topology gives no way to reach this service; checks that need it are skipped."""


@dataclass
class Endpoint:
    """One reachable service: its HTTP API, plus credentials for a login if it needs one."""

    http: HTTPService
    via: str  # "proxy" or "url"
    login: tuple[str, str] | None = None  # (user, password) for a session login (Grafana behind the proxy)


def service_title(cluster: Cluster, service: str) -> str:
    """How messages name a service, e.g. 'workstation Prometheus'."""
    return f"{cluster.name} {SERVICE_TITLES.get(service, service)}"


class Access:
    """Resolves (cluster, service) to an Endpoint for every cluster of a topology."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._kube: dict[str, KubeAccess] = {}

    def kube(self, cluster: Cluster) -> KubeAccess:
        """The cluster's API server; ServiceAbsent for an endpoints cluster (it has none)."""
        if not cluster.has_kube:
            raise ServiceAbsent(f"cluster {cluster.name} has provider endpoints: no Kubernetes API access")
        if cluster.name not in self._kube:
            self._kube[cluster.name] = KubeAccess(cluster)
        return self._kube[cluster.name]

    def endpoint(self, cluster: Cluster, service: str) -> Endpoint:
        """The way to reach service on cluster; ServiceAbsent when the topology gives none."""
        title = service_title(cluster, service)
        override = cluster.services.get(service)
        if override is not None:
            auth = override.auth
            headers = auth.headers() if auth else {}
            basic = auth.basic() if auth else None
            for value in list(headers.values()) + list(basic or ()):
                register_secret(value.removeprefix("Bearer "))
            return Endpoint(HTTPService(title, override.url, headers=headers, auth=basic), via="url")
        if not cluster.has_kube:
            raise ServiceAbsent(f"{service} is not in the topology for cluster {cluster.name} (provider endpoints lists no services.{service})")
        spec = stack_services(profile=self.topology.profile)[service]
        if cluster.role not in spec.roles:
            raise ServiceAbsent(f"the stack runs no {service} on {cluster.role} cluster {cluster.name}")
        kube = self.kube(cluster)
        http = kube.http(title, spec.proxy_path())
        login = None
        if spec.credentials_secret is not None:
            login = self._credentials(kube, spec.namespace, spec.credentials_secret, title)
        return Endpoint(http, via="proxy", login=login)

    def _credentials(self, kube: KubeAccess, namespace: str, secret, title: str) -> tuple[str, str]:
        try:
            user = kube.secret_value(namespace, secret.name, secret.user_key)
            password = kube.secret_value(namespace, secret.name, secret.password_key)
        except ApiException as e:
            raise PreconditionUnmet(
                f"conformance → {title}",
                f"cannot read credentials from Secret {namespace}/{secret.name}: {e.status} {e.reason}",
            ) from None
        except KeyError as e:
            raise PreconditionUnmet(f"conformance → {title}", str(e.args[0])) from None
        register_secret(password)
        return user, password
