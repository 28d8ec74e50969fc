"""A cluster's Kubernetes API server, as its kubeconfig context describes it."""

from __future__ import annotations

import base64
import ssl
from functools import cached_property

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from conformance.http import HTTPService
from conformance.outcomes import PreconditionUnmet
from conformance.redact import redact, register_secret
from conformance.topology import Cluster


class KubeAccess:
    """Credentials and API clients for one cluster's API server."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    @property
    def hop(self) -> str:
        return f"conformance → {self.cluster.name} API server"

    @cached_property
    def configuration(self) -> kubernetes.client.Configuration:
        """The kubernetes client configuration for the cluster's context (loaded once)."""
        cfg = kubernetes.client.Configuration()
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
        return cfg

    @staticmethod
    def _token(cfg: kubernetes.client.Configuration) -> str | None:
        """'Bearer <token>' as the client stores it (key BearerToken since v2x, authorization before)."""
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
        return HTTPService(name=name, base_url=self.server + path, headers=self.auth_headers(), verify=self.tls())

    @cached_property
    def api_client(self) -> kubernetes.client.ApiClient:
        return kubernetes.client.ApiClient(self.configuration)

    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api_client)

    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.api_client)

    def call(self, what: str, fn, *args, **kwargs):
        """Call a kubernetes client method; errors that waiting cannot fix become PreconditionUnmet."""
        kwargs.setdefault("_request_timeout", 15)
        try:
            return fn(*args, **kwargs)
        except ApiException as e:
            if e.status in (429,) or (e.status or 0) >= 500:
                raise
            raise PreconditionUnmet(self.hop, f"{what}: {e.status} {e.reason}", redact(str(e.body or ""))[:500]) from None
        except urllib3.exceptions.HTTPError as e:
            raise PreconditionUnmet(self.hop, f"{what}: API server unreachable at {self.server} ({type(e).__name__})") from None

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        """One decoded key of a Secret; the value is registered for redaction before it is returned."""
        secret = self.core().read_namespaced_secret(name, namespace, _request_timeout=10)
        raw = (secret.data or {}).get(key)
        if raw is None:
            raise KeyError(f"Secret {namespace}/{name} has no key {key}")
        value = base64.b64decode(raw).decode()
        register_secret(value)
        return value
