"""The stack's in-cluster services, read from stack/services.yaml (the one place they are named)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from conformance.core import yamltext

STACK_DIR = Path(__file__).resolve().parents[2] / "stack"
SERVICES_FILE = STACK_DIR / "services.yaml"


@dataclass(frozen=True)
class CredentialsSecret:
    """A Secret whose keys hold a basic-auth user and password."""

    name: str
    user_key: str
    password_key: str


@dataclass(frozen=True)
class Placement:
    """What a topology says of a service it does not give a URL for: where it is, and Grafana's admin Secret."""

    namespace: str | None = None
    service: str | None = None
    port: int | None = None
    credentials_secret: CredentialsSecret | None = None


@dataclass(frozen=True)
class StackService:
    """One HTTP service of the stack as deployed by the bring-up."""

    key: str
    namespace: str
    service: str
    port: int
    scheme: str = "http"
    web_root: str = ""
    roles: tuple[str, ...] = ("primary",)
    credentials_secret: CredentialsSecret | None = None
    pod_selector: str | None = None  # label selector of the service's pods (to read their logs)
    container: str | None = None
    workload: str | None = None  # "Deployment": found as a workload, not a Service (it serves nothing the suite reads)

    def proxy_path(self) -> str:
        """The API server's service-proxy path to this service's web root."""
        return (
            f"/api/v1/namespaces/{self.namespace}/services/"
            f"{self.scheme}:{self.service}:{self.port}/proxy{self.web_root}"
        )


@cache
def _document(path: Path) -> dict:
    """stack/services.yaml, parsed once."""
    return yamltext.parse(path.read_text())


@cache
def stack_services(path: Path = SERVICES_FILE, profile: str = "promtail") -> dict[str, StackService]:
    """All stack services by key (prometheus, loki, grafana, kiali, ...), as the stack profile runs them.

    A row's `by_profile: {<profile>: {...}}` replaces its keys for that profile (Loki's Service differs).
    """
    doc = _document(path)
    namespace = doc["namespace"]
    services = {}
    for key, row in doc["services"].items():
        spec = {**{k: v for k, v in row.items() if k != "by_profile"}, **(row.get("by_profile") or {}).get(profile, {})}
        secret = spec.get("credentials_secret")
        services[key] = StackService(
            key=key,
            namespace=spec.get("namespace", namespace),
            service=spec["service"],
            port=int(spec["port"]),
            scheme=spec.get("scheme", "http"),
            web_root=spec.get("web_root", ""),
            roles=tuple(spec.get("roles", ["primary"])),
            credentials_secret=CredentialsSecret(**secret) if secret else None,
            pod_selector=spec.get("pod_selector"),
            container=spec.get("container"),
            workload=spec.get("workload"),
        )
    return services


def stack_namespace(path: Path = SERVICES_FILE) -> str:
    """The namespace the monitoring stack is installed into."""
    return _document(path)["namespace"]


def stack_pod_namespaces(path: Path = SERVICES_FILE) -> list[str]:
    """Namespaces whose pods the platform check requires Ready."""
    return list(_document(path).get("pod_namespaces") or [stack_namespace(path)])


@dataclass(frozen=True)
class CanarySpec:
    namespace: str
    image: str


def canary_spec(path: Path = SERVICES_FILE) -> CanarySpec:
    """Where and with which image the log canary pod runs."""
    return CanarySpec(**_document(path)["canary"])
