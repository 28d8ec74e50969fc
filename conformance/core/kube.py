"""A cluster's Kubernetes API server, as its kubeconfig context describes it.

Credentials may be short-lived (an exec plugin such as `oci ce cluster
generate-token`, EKS, GKE): they are refreshed when they expire (the kubernetes
client's refresh hook re-runs the plugin) and once more on a 401, for the
kubernetes client and for the service-proxy HTTP calls alike.

Errors are the HTTP layer's family: an API server that does not answer is
Unreachable, one that answers 429 or 5xx a transient KubeAPIError (retried with the
same bounded backoff, NotYet inside a wait), 401, 403 and 404 final, with the
server's own message; a kubeconfig that cannot be used is a KubeconfigProblem.
`prove()` checks once, before any check, that the API server answers and the
credentials may do what the run needs.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import threading
import time
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Generator, TypeVar

import httpx
import yaml

from conformance.core.http import (USER_AGENT, APIError, HTTPService, RetryPolicy, ServiceError, Unreachable,
                              body_gist, connection_problem, current_policy, with_retries)
from conformance.core.on_use import imported_on_use
from conformance.core.redact import redact, register_secret
from conformance.core.topology import Cluster

kubernetes = imported_on_use("kubernetes")  # not loaded by a run without Kubernetes clusters
urllib3 = imported_on_use("urllib3")

T = TypeVar("T")
UNAUTHORIZED = 401
KUBE_RETRY = RetryPolicy()  # the same bounded backoff as every HTTP service's
# The access proof's bound: one slow API server must not hold the run (connect, then the whole proof).
PROOF_CONNECT_TIMEOUT = 5.0
PROOF_BUDGET = 12.0


class KubeconfigProblem(ServiceError):
    """The kubeconfig (file or context) cannot be used: nothing can reach this API server until it is fixed."""

    transient = False
    suite_access = True

    def __init__(self, service: str, reason: str) -> None:
        self.service = service
        self.reason = redact(reason)
        super().__init__(self.headline)

    @property
    def headline(self) -> str:
        return f"{self.service}: {self.reason}"


class KubeAPIError(ServiceError):
    """The API server answered a call with an error status; keeps its Status message."""

    def __init__(self, service: str, what: str, status: int, reason: str, body: str) -> None:
        self.service = service
        self.what = what
        self.status = status
        self.reason = reason or ""
        self.body = redact((body or "").strip())[:1000]
        super().__init__(self.headline)

    @property
    def transient(self) -> bool:
        return self.status == 429 or self.status >= 500

    @property
    def suite_access(self) -> bool:  # type: ignore[override]
        """401 or 403 from the API server: the run's credentials may not, which says nothing of the stack."""
        return self.status in (401, 403)

    @property
    def headline(self) -> str:
        return f"{self.service} {self.what}: {self.status} {self.reason}: {body_gist(self.body)}".rstrip(": ")

    @property
    def detail(self) -> str:
        return self.body


@dataclass(frozen=True)
class Permission:
    """One thing the run asks of the API server (a SelfSubjectAccessReview's attributes)."""

    verb: str
    resource: str  # "services/proxy": the resource, then its subresource
    namespace: str | None = None  # None: cluster-wide

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}" + (f" in namespace {self.namespace}" if self.namespace else "")

    def review(self) -> dict:
        resource, _, sub = self.resource.partition("/")
        attrs = {"verb": self.verb, "resource": resource, **({"subresource": sub} if sub else {}),
                 **({"namespace": self.namespace} if self.namespace else {})}
        return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attrs}}


@dataclass(frozen=True)
class AccessProof:
    """What one look at a cluster's API server found, before any check ran."""

    cluster: str
    server: str  # "" when the kubeconfig gave none
    problem: str = ""  # why nothing can be done through this API server ("" when it answers)
    denied: tuple[str, ...] = ()  # the permissions the credentials lack, as words (Permission.__str__)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problem

    def denies(self, permission: Permission) -> bool:
        return str(permission) in self.denied

    @property
    def summary(self) -> str:
        """One line for the reports: how the API server answered."""
        where = f" at {self.server}" if self.server else ""
        if self.problem:
            return f"{self.cluster} API server{where}: {self.problem}"
        lacks = f"; the credentials may not {', '.join(self.denied)}" if self.denied else ""
        return f"{self.cluster} API server{where} answered in {self.seconds:.2f} s{lacks}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "AccessProof":
        raw: dict[str, Any] = json.loads(text)
        return cls(**{**raw, "denied": tuple(raw.get("denied", ()))})


def context_names(source: str) -> list[str] | None:
    """The context names of a kubeconfig (KUBECONFIG may list several files); None when none of them can be read."""
    names: list[str] | None = None
    for path in (p for p in source.split(os.pathsep) if p):
        try:
            doc = yaml.safe_load(Path(path).expanduser().read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        names = (names or []) + [c.get("name", "") for c in doc.get("contexts") or [] if isinstance(c, dict)]
    return names


class KubeAccess:
    """Credentials and API clients for one cluster's API server."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.name = f"{cluster.name} API server"  # how messages name this API server
        self.hop = f"conformance → {self.name}"  # the hop from the suite to it, as checks name it
        self._reload_lock = threading.Lock()

    @cached_property
    def configuration(self) -> kubernetes.client.Configuration:
        """The kubernetes client configuration for the cluster's context (loaded once, refreshed in place)."""
        cfg = kubernetes.client.Configuration()
        self._load(cfg)
        return cfg

    def _load(self, cfg: kubernetes.client.Configuration) -> None:
        """Read the kubeconfig context into cfg; an exec plugin runs now for a fresh token."""
        try:
            kubernetes.config.load_kube_config(
                config_file=str(self.cluster.kubeconfig) if self.cluster.kubeconfig else None,
                context=self.cluster.kube_context,
                client_configuration=cfg,
                persist_config=False,
            )
        except (kubernetes.config.ConfigException, OSError, ValueError, TypeError) as e:
            raise KubeconfigProblem(self.name, self._kubeconfig_problem(e)) from None
        register_secret((self._token(cfg) or "").removeprefix("Bearer ").strip())

    def _kubeconfig_problem(self, error: Exception) -> str:
        """Why the kubeconfig context cannot be used, in one line (a missing context lists the ones there are)."""
        source = str(self.cluster.kubeconfig) if self.cluster.kubeconfig else (
            os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser()))
        context = self.cluster.kube_context
        names = context_names(source)
        if names is None:
            return f"cannot read kubeconfig {source}: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
        if context and context not in names:
            return f"kubeconfig context {context!r} not found in {source} (it has: {', '.join(names) or 'none'})"
        what = f"context {context!r}" if context else "its current context"
        return f"cannot use kubeconfig {source}, {what}: {str(error).splitlines()[0] if str(error) else type(error).__name__}"

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

    def http(self, name: str, path: str = "", **options: Any) -> HTTPService:
        """An HTTPService rooted at a path of the API server (e.g. a service-proxy path)."""
        return HTTPService(name=name, base_url=self.server + path, auth=KubeAuth(self), verify=self.tls(), **options)

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
        except kubernetes.client.ApiException as e:
            if e.status != UNAUTHORIZED:
                raise
        self.refresh_credentials(rejected=sent)
        return fn(*args, **kwargs)

    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api_client)

    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.api_client)

    def call(self, what: str, fn: Callable[..., T], *args: Any, ok: tuple[int, ...] = (), **kwargs: Any) -> T | None:
        """Call a kubernetes client method; None when it answers a status in `ok`, else a service error as any HTTP call's.

        `what` says what the call does, for the message ("create the canary pod").
        """
        kwargs.setdefault("_request_timeout", 15)

        def once() -> T | None:
            try:
                return self.with_fresh_credentials(fn, *args, **kwargs)
            except kubernetes.client.ApiException as e:
                if e.status in ok:
                    return None
                if not e.status:  # the client's own transport error, wrapped
                    raise Unreachable(self.name, self.server, e.reason or "no answer") from None
                raise KubeAPIError(self.name, what, e.status, e.reason, str(e.body or "")) from None
            except urllib3.exceptions.HTTPError as e:
                raise Unreachable(self.name, self.server, connection_problem(e)) from None

        return with_retries(once, current_policy(KUBE_RETRY))

    def pod_logs(self, what: str, namespace: str, selector: str, container: str | None, since_seconds: int) -> str:
        """The recent log of one container of every pod matching selector, pods one after another."""
        core = self.core()
        pods = self.call(f"list {what} pods", core.list_namespaced_pod, namespace, label_selector=selector).items
        return "\n".join(self.call(f"read {what}'s log", core.read_namespaced_pod_log, pod.metadata.name, namespace,
                                    container=container, since_seconds=since_seconds) for pod in pods)

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        """One decoded key of a Secret; the value is registered for redaction before it is returned."""
        secret = self.call(f"read Secret {namespace}/{name}", self.core().read_namespaced_secret, name, namespace,
                           _request_timeout=10)
        raw = (secret.data or {}).get(key)
        if raw is None:
            raise KubeAPIError(self.name, f"read Secret {namespace}/{name}", 404, "Not Found", f"the Secret has no key {key}")
        value = base64.b64decode(raw).decode()
        register_secret(value)
        return value

    def prove(self, permissions: list[Permission] = ()) -> AccessProof:
        """One bounded look before any check: the kubeconfig context, an answer from the API server, the permissions."""
        started = time.monotonic()

        def proof(problem: str = "", denied: tuple[str, ...] = ()) -> AccessProof:
            server = self.configuration.host.rstrip("/") if "configuration" in self.__dict__ else ""
            return AccessProof(self.cluster.name, redact(server), problem, denied, round(time.monotonic() - started, 3))

        try:
            api = self.http(self.name, timeout=PROOF_CONNECT_TIMEOUT,
                            retry=RetryPolicy(attempts=2, budget=PROOF_BUDGET / 2))
            api.get_json("/version")
        except KubeconfigProblem as e:
            return proof(e.reason)
        except Unreachable as e:
            return proof(f"unreachable: {e.reason}")
        except APIError as e:
            if e.status == UNAUTHORIZED:
                return proof(f"the credentials of the kubeconfig are refused (401 {body_gist(e.body)})")
            if e.transient:
                return proof(f"not serving: {e.status} {body_gist(e.body)}")
        denied: list[str] = []
        for permission in permissions:
            if time.monotonic() - started > PROOF_BUDGET:
                break  # the checks meet what is left themselves, with the server's message
            try:
                answer = api.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                     json=permission.review()).json()
            except ServiceError:
                break  # the server cannot say (an old or locked-down authorizer): the checks meet it themselves
            if not (answer.get("status") or {}).get("allowed"):
                denied.append(str(permission))
        return proof(denied=tuple(denied))


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
