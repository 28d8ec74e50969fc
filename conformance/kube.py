"""A cluster's Kubernetes API server, as its kubeconfig context describes it.

Credentials may be short-lived (an exec plugin such as `oci ce cluster
generate-token`, EKS, GKE): they are refreshed when they expire (the kubernetes
client's refresh hook re-runs the plugin) and once more on a 401, for the
kubernetes client and for the service-proxy HTTP calls alike.
"""

from __future__ import annotations

import base64
import ssl
import threading
from functools import cached_property
from typing import Callable, Generator, TypeVar

import httpx
import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from conformance.http import USER_AGENT, HTTPService
from conformance.outcomes import PreconditionUnmet
from conformance.redact import redact, register_secret
from conformance.topology import Cluster

T = TypeVar("T")
UNAUTHORIZED = 401


class KubeAccess:
    """Credentials and API clients for one cluster's API server."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._reload_lock = threading.Lock()

    @property
    def hop(self) -> str:
        return f"conformance → {self.cluster.name} API server"

    @cached_property
    def configuration(self) -> kubernetes.client.Configuration:
        """The kubernetes client configuration for the cluster's context (loaded once, refreshed in place)."""
        cfg = kubernetes.client.Configuration()
        self._load(cfg)
        return cfg

    def _load(self, cfg: kubernetes.client.Configuration) -> None:
        """Read the kubeconfig context into cfg; an exec plugin runs now for a fresh token."""
        source = str(self.cluster.kubeconfig) if self.cluster.kubeconfig else "the default kubeconfig"
        try:
            kubernetes.config.load_kube_config(
                config_file=str(self.cluster.kubeconfig) if self.cluster.kubeconfig else None,
                context=self.cluster.kube_context,
                client_configuration=cfg,
                persist_config=False,
            )
        except (ConfigException, OSError) as e:
            context = self.cluster.kube_context or "its current context"
            raise PreconditionUnmet(self.hop, f"cannot use kubeconfig context {context} from {source}: {e}") from None
        register_secret((self._token(cfg) or "").removeprefix("Bearer ").strip())

    def refresh_credentials(self, rejected: str | None = None) -> None:
        """Load the credentials again after the API server refused them with 401.

        `rejected` is the Authorization value that was refused: when another caller
        has already replaced it, nothing is reloaded (one refresh per expiry, not per caller).
        """
        with self._reload_lock:
            if rejected is not None and self._token(self.configuration, refresh=False) != rejected:
                return
            self._load(self.configuration)

    @staticmethod
    def _token(cfg: kubernetes.client.Configuration, refresh: bool = True) -> str | None:
        """'Bearer <token>' as the client stores it; with refresh, an expired exec/OIDC token is renewed first."""
        if not refresh:
            return cfg.api_key.get("BearerToken") or cfg.api_key.get("authorization")
        return cfg.get_api_key_with_prefix("BearerToken", alias="authorization")

    @property
    def server(self) -> str:
        return self.configuration.host.rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header for the API server, refreshed if the kubeconfig uses a plugin."""
        cfg = self.configuration
        token = self._token(cfg)  # runs the refresh hook of exec/OIDC kubeconfigs
        if token:
            register_secret(token.removeprefix("Bearer ").strip())
            return {"Authorization": token}
        if cfg.username and cfg.password:
            register_secret(cfg.password)
            raw = base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()
            return {"Authorization": f"Basic {raw}"}
        return {}

    def tls(self) -> ssl.SSLContext | bool:
        """The TLS context that trusts the cluster CA and presents the client certificate, if any."""
        cfg = self.configuration
        if not self.server.startswith("https"):
            return True
        if not cfg.verify_ssl:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if cfg.cert_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        return ctx

    def http(self, name: str, path: str = "") -> HTTPService:
        """An HTTPService rooted at a path of the API server (e.g. a service-proxy path)."""
        return HTTPService(name=name, base_url=self.server + path, auth=KubeAuth(self), verify=self.tls())

    @cached_property
    def api_client(self) -> kubernetes.client.ApiClient:
        client = kubernetes.client.ApiClient(self.configuration)
        client.user_agent = USER_AGENT
        return client

    def with_fresh_credentials(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """Call a kubernetes client method; on 401, refresh the credentials once and call it again."""
        sent = self._token(self.configuration, refresh=False)
        try:
            return fn(*args, **kwargs)
        except ApiException as e:
            if e.status != UNAUTHORIZED:
                raise
        self.refresh_credentials(rejected=sent)
        return fn(*args, **kwargs)

    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api_client)

    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.api_client)

    def call(self, what: str, fn, *args, **kwargs):
        """Call a kubernetes client method; errors that waiting cannot fix become PreconditionUnmet."""
        kwargs.setdefault("_request_timeout", 15)
        try:
            return self.with_fresh_credentials(fn, *args, **kwargs)
        except ApiException as e:
            if e.status in (429,) or (e.status or 0) >= 500:
                raise
            raise PreconditionUnmet(self.hop, f"{what}: {e.status} {e.reason}", redact(str(e.body or ""))[:500]) from None
        except urllib3.exceptions.HTTPError as e:
            raise PreconditionUnmet(self.hop, f"{what}: API server unreachable at {self.server} ({type(e).__name__})") from None

    def pod_logs(self, what: str, namespace: str, selector: str, container: str | None, since_seconds: int) -> str:
        """The recent log of one container of every pod matching selector, pods one after another."""
        core = self.core()
        pods = self.call(f"list {what} pods", core.list_namespaced_pod, namespace, label_selector=selector).items
        return "\n".join(self.call(f"read {what}'s log", core.read_namespaced_pod_log, pod.metadata.name, namespace,
                                    container=container, since_seconds=since_seconds) for pod in pods)

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        """One decoded key of a Secret; the value is registered for redaction before it is returned."""
        secret = self.with_fresh_credentials(self.core().read_namespaced_secret, name, namespace, _request_timeout=10)
        raw = (secret.data or {}).get(key)
        if raw is None:
            raise KeyError(f"Secret {namespace}/{name} has no key {key}")
        value = base64.b64decode(raw).decode()
        register_secret(value)
        return value


class KubeAuth(httpx.Auth):
    """The API server's credentials on every request, current at send time; one refresh and resend on a 401."""

    def __init__(self, kube: KubeAccess) -> None:
        self.kube = kube

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        headers = self.kube.auth_headers()
        request.headers.update(headers)
        response = yield request
        if response.status_code != UNAUTHORIZED or "Authorization" not in headers:
            return
        self.kube.refresh_credentials(rejected=headers["Authorization"])
        request.headers.update(self.kube.auth_headers())
        yield request
