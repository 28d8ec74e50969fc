"""The topology file: which clusters exist, their roles, and how to reach them.

Everything else asks the topology for cluster names; nothing hard-codes one.
It also says which optional parts the stack has (`parts:`): the bring-up installs
them and their checks run; a part not listed is skipped with that reason. `profile:` names the
stack profile (conformance/core/profiles.py: `promtail` by default, or `alloy`).
Bad input raises ConfigError with a one-line message naming the file and the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from conformance.core.errors import ConfigError
from conformance.core.names import part_name
from conformance.core.profiles import DEFAULT_PROFILE, PROFILES, Profile, profile as find_profile
from conformance.core.stack import CredentialsSecret, Placement, stack_services

PROVIDERS = ("kind", "existing", "endpoints")
ROLES = ("primary", "remote")
CLUSTER_KEYS = ("name", "role", "provider", "context", "kubeconfig", "services", "absent", "log_canary", "grafana_log",
                "prometheus_log", "stack", "dashboards")
STACK_OWNERS = ("bring-up", "own")  # `stack:` whose values are the expectation: the bring-up's, or the stack's own
SERVICE_KEYS = ("url", "auth", "namespace", "service", "port", "credentials_secret")
PLACEMENT_KEYS = ("namespace", "service", "port", "credentials_secret")
SECRET_KEYS = ("name", "user_key", "password_key")
AUTH_KEYS = ("bearer_env", "basic_user", "basic_password_env")
TOPOLOGY_KEYS = ("clusters", "parts", "profile")
# A cluster name becomes a label value and a kind cluster name: keep it DNS-safe.
NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class PartSpec:
    """An optional part of the stack: its options, each with the values it allows (the first is the default)."""

    name: str
    summary: str
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)


# The optional parts a topology may list under `parts:`; a later part is one more entry.
PARTS: dict[str, PartSpec] = {p.name: p for p in [
    PartSpec("alerting", "kube-prometheus-stack's Alertmanager on the primary; Prometheus rules on every cluster",
             # Where the remotes' Prometheus send their alerts: the primary's Alertmanager, or nowhere.
             {"remote_alerts": ("primary", "none")}),
    PartSpec("app-metrics", "a sample app exposing its own metrics, with a ServiceMonitor the stack selects, on every cluster"),
    PartSpec("kube-bench", "kube-bench on every node (a CronJob per node), totals pushed to a Pushgateway on every cluster",
             # How often each node runs kube-bench (its CronJob's schedule); the freshness check allows one interval.
             {"interval": ("1h", "15m", "6h", "24h")}),
    PartSpec("kube-state-metrics", "kube-prometheus-stack's kube-state-metrics on every cluster (on by default), "
                                   "describing the cluster's pods on the primary"),
    PartSpec("events", "kubernetes-event-exporter on every cluster, pushing Kubernetes events to the primary Loki "
                       "(job=kubernetes-event, cluster=<name>)"),
    PartSpec("configmap-dashboards", "Grafana's dashboard sidecar provisions labelled ConfigMaps of any namespace "
             "into the folder their annotation names, on the primary"),
    PartSpec("tracing", "Jaeger on the primary (Istio's addon); every cluster's sidecars send Zipkin spans there; "
                        "Kiali's tracing integration points at it", {}),
]}


@dataclass(frozen=True)
class Part:
    """One optional part a topology lists, with its options resolved (defaults filled in)."""

    name: str
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        extra = ", ".join(f"{k}: {v}" for k, v in self.options.items())
        return f"{self.name} ({extra})" if extra else self.name


@dataclass(frozen=True)
class Auth:
    """Credentials named by environment variable, resolved only when a request is made."""

    bearer_env: str | None = None
    basic_user: str | None = None
    basic_password_env: str | None = None

    def headers(self) -> dict[str, str]:
        """Authorization header for a bearer token; empty for basic auth."""
        if self.bearer_env:
            return {"Authorization": f"Bearer {os.environ[self.bearer_env]}"}
        return {}

    def basic(self) -> tuple[str, str] | None:
        """(user, password) for basic auth, or None."""
        if self.basic_user is None:
            return None
        return self.basic_user, os.environ[self.basic_password_env or ""]


@dataclass(frozen=True)
class ServiceOverride:
    """A URL that replaces the service proxy for one service (the URL includes any web root)."""

    url: str
    auth: Auth | None = None


@dataclass(frozen=True)
class Cluster:
    """One cluster of the topology."""

    name: str
    role: str
    provider: str
    context: str | None = None
    kubeconfig: Path | None = None
    services: dict[str, ServiceOverride] = field(default_factory=dict)  # a URL per service
    placements: dict[str, Placement] = field(default_factory=dict)  # where in the cluster, when not found by its labels
    absent: frozenset[str] = frozenset()  # services the stack lacks here on purpose: their checks are not applicable
    log_canary_file: Path | None = None
    grafana_log_file: Path | None = None
    prometheus_log_file: Path | None = None  # endpoints: the cluster Prometheus's own log (remote-write errors)
    stack: str | None = None  # `stack: bring-up|own`; None: decided by how the service was found (stack_owner.py)
    dashboards: tuple[str, ...] | None = None  # `dashboards: [uid or title, ...]`: the dashboards the user expects

    @property
    def is_primary(self) -> bool:
        return self.role == "primary"

    @property
    def has_kube(self) -> bool:
        """True when the cluster is reached through a Kubernetes API server."""
        return self.provider != "endpoints"

    @property
    def kube_context(self) -> str | None:
        """The kubeconfig context; kind clusters default to kind's own `kind-<name>`."""
        if self.context:
            return self.context
        return f"kind-{self.name}" if self.provider == "kind" else None

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Topology:
    """All clusters; exactly one primary."""

    path: Path
    clusters: tuple[Cluster, ...]
    parts: dict[str, Part] = field(default_factory=dict)
    profile: str = DEFAULT_PROFILE  # the stack profile (conformance/core/profiles.py)

    @property
    def stack_profile(self) -> Profile:
        return PROFILES[self.profile]

    def with_profile(self, name: str | None) -> "Topology":
        """This topology with another stack profile (`--profile`); None keeps the topology's own."""
        if not name:
            return self
        return Topology(path=self.path, clusters=self.clusters, parts=self.parts, profile=find_profile(name).name)

    def has(self, part: str) -> bool:
        """True when the stack has this optional part (topology `parts:`; an alias such as kubebench too)."""
        return part_name(part) in self.parts

    def part_missing(self, part: str) -> str | None:
        """Why the checks of a part do not run here, or None when the stack has it."""
        part = part_name(part)
        if part not in PARTS:
            raise KeyError(part)
        if self.has(part):
            return None
        return f"{part} is not a part of this stack (topology {self.path} lists it under parts: when it is)"

    def with_parts(self, names: list[str]) -> "Topology":
        """This topology with more parts at their default options (`--with`); a bad name is a ConfigError."""
        added = dict(self.parts)
        for given in names:
            name = part_name(given)
            if name not in PARTS:
                raise ConfigError(f"--with {given}: unknown part; expected one of {', '.join(PARTS)}")
            added.setdefault(name, Part(name, {k: v[0] for k, v in PARTS[name].options.items()}))
        return Topology(path=self.path, clusters=self.clusters, parts=added, profile=self.profile)

    @property
    def primary(self) -> Cluster:
        return next(c for c in self.clusters if c.is_primary)

    @property
    def remotes(self) -> tuple[Cluster, ...]:
        return tuple(c for c in self.clusters if not c.is_primary)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.clusters)

    def cluster(self, name: str) -> Cluster:
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)


def load_topology(path: str | Path) -> Topology:
    """Read and validate a topology file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"topology {path}: file not found")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"topology {path}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    return _Parser(path).topology(doc)


class _Parser:
    def __init__(self, path: Path):
        self.path = path
        self.base = path.resolve().parent

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"topology {self.path}: {key}: {message}")

    def topology(self, doc: Any) -> Topology:
        if not isinstance(doc, dict):
            raise ConfigError(f"topology {self.path}: expected a mapping with key 'clusters'")
        self.no_unknown_keys(doc, TOPOLOGY_KEYS, "")
        items = doc.get("clusters")
        if not isinstance(items, list) or not items:
            raise self.fail("clusters", "expected a non-empty list of clusters")
        clusters = tuple(self.cluster(item, f"clusters[{i}]") for i, item in enumerate(items))
        names = [c.name for c in clusters]
        for name in names:
            if names.count(name) > 1:
                raise self.fail("clusters", f"cluster name {name!r} is used more than once")
        primaries = [c.name for c in clusters if c.is_primary]
        if not primaries:
            raise self.fail("clusters", "no cluster has role: primary (exactly one is required)")
        if len(primaries) > 1:
            raise self.fail("clusters", f"{len(primaries)} clusters have role: primary ({', '.join(primaries)}); exactly one is allowed")
        return Topology(path=self.path, clusters=clusters, parts=self.parts(doc.get("parts")),
                        profile=self.profile(doc.get("profile")))

    def profile(self, raw: Any) -> str:
        """`profile: alloy`; absent, the default profile."""
        if raw is None:
            return DEFAULT_PROFILE
        if raw not in PROFILES:
            raise self.fail("profile", f"unknown profile {raw!r}; expected one of {', '.join(PROFILES)}")
        return raw

    def parts(self, raw: Any) -> dict[str, Part]:
        """`parts: {alerting: {remote_alerts: primary}}`, or a list of names at their defaults."""
        if raw is None:
            return {}
        if isinstance(raw, list) and all(isinstance(n, str) for n in raw):
            raw = {n: None for n in raw}
        if not isinstance(raw, dict):
            raise self.fail("parts", "expected a mapping of part name to its options (or a list of part names)")
        out = {}
        for name, options in raw.items():
            key = f"parts.{name}"  # as the file spells it; an alias (kubebench) names its part
            name = part_name(name)
            spec = PARTS.get(name)
            if spec is None:
                raise self.fail(key, f"unknown part; expected one of {', '.join(PARTS)}")
            options = {} if options is None else options
            if not isinstance(options, dict):
                raise self.fail(key, f"expected a mapping of options ({', '.join(spec.options) or 'none'})")
            self.no_unknown_keys(options, tuple(spec.options), key)
            resolved = {}
            for opt, allowed in spec.options.items():
                value = options.get(opt, allowed[0])
                if value not in allowed:
                    raise self.fail(f"{key}.{opt}", f"unknown value {value!r}; expected one of {', '.join(allowed)}")
                resolved[opt] = value
            out[name] = Part(name, resolved)
        return out

    def cluster(self, item: Any, key: str) -> Cluster:
        if not isinstance(item, dict):
            raise self.fail(key, "expected a mapping with name, role and provider")
        self.no_unknown_keys(item, CLUSTER_KEYS, key)
        name = item.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise self.fail(f"{key}.name", f"expected a lowercase DNS label (a-z, 0-9, -), got {name!r}")
        key = f"{key} ({name})"
        role = item.get("role")
        if role not in ROLES:
            raise self.fail(f"{key}.role", f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        provider = item.get("provider")
        if provider not in PROVIDERS:
            raise self.fail(f"{key}.provider", f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
        services, placements = self.services(item.get("services"), role, f"{key}.services")
        absent = self.absent(item.get("absent"), {**services, **placements}, f"{key}.absent")
        if provider == "endpoints":
            for name in placements:
                raise self.fail(f"{key}.services.{name}", "provider endpoints has no Kubernetes access: give a url")
            if not services:
                raise self.fail(f"{key}.services", "provider endpoints needs services: a URL for each service to check")
            for k in ("context", "kubeconfig"):
                if k in item:
                    raise self.fail(f"{key}.{k}", "provider endpoints has no Kubernetes access; remove this key")
        context = self.optional_str(item, "context", key)
        kubeconfig = self.existing_file(item.get("kubeconfig"), f"{key}.kubeconfig")
        if provider == "existing" and not (context or kubeconfig):
            raise self.fail(f"{key}.context", "provider existing needs a kubeconfig context (or a kubeconfig file)")
        return Cluster(
            name=name,
            role=role,
            provider=provider,
            context=context,
            kubeconfig=kubeconfig,
            services=services,
            placements=placements,
            absent=absent,
            log_canary_file=self.file_ref(item.get("log_canary"), f"{key}.log_canary"),
            grafana_log_file=self.file_ref(item.get("grafana_log"), f"{key}.grafana_log"),
            prometheus_log_file=self.file_ref(item.get("prometheus_log"), f"{key}.prometheus_log"),
            stack=self.stack_owner(item.get("stack"), f"{key}.stack"),
            dashboards=self.dashboard_list(item.get("dashboards"), f"{key}.dashboards"),
        )

    def stack_owner(self, raw: Any, key: str) -> str | None:
        """`stack: bring-up` (this project's bring-up installed it) or `stack: own`."""
        if raw is not None and raw not in STACK_OWNERS:
            raise self.fail(key, f"unknown value {raw!r}; expected one of {', '.join(STACK_OWNERS)}")
        return raw

    def dashboard_list(self, raw: Any, key: str) -> tuple[str, ...] | None:
        """`dashboards: [uid or title, ...]`: what Grafana's providers must provision here."""
        if raw is None:
            return None
        if not isinstance(raw, list) or not raw or not all(isinstance(n, str) and n for n in raw):
            raise self.fail(key, "expected a non-empty list of dashboard uids or titles")
        return tuple(raw)

    def services(self, raw: Any, role: str, key: str) -> tuple[dict[str, ServiceOverride], dict[str, Placement]]:
        """Per service a URL (with auth), or where it runs in the cluster (namespace, service, port)."""
        if raw is None:
            return {}, {}
        if not isinstance(raw, dict):
            raise self.fail(key, "expected a mapping of service name to URL")
        known = stack_services()
        urls, placements = {}, {}
        for name, spec in raw.items():
            skey = f"{key}.{name}"
            if name not in known:
                raise self.fail(skey, f"unknown service; expected one of {', '.join(known)}")
            if role not in known[name].roles:
                raise self.fail(skey, f"{name} runs on the primary only in this stack")
            if isinstance(spec, str):
                spec = {"url": spec}
            if not isinstance(spec, dict):
                raise self.fail(skey, "expected a URL or a mapping with url and auth (or namespace, service, port)")
            self.no_unknown_keys(spec, SERVICE_KEYS, skey)
            placed = [k for k in PLACEMENT_KEYS if k in spec]
            if "url" in spec and placed:
                raise self.fail(f"{skey}.{placed[0]}", "give either url or where the service runs in the cluster, not both")
            if "url" in spec or "auth" in spec:
                urls[name] = ServiceOverride(url=self.url(spec.get("url"), f"{skey}.url"),
                                             auth=self.auth(spec.get("auth"), f"{skey}.auth"))
            else:
                placements[name] = self.placement(spec, name, skey)
        return urls, placements

    def placement(self, spec: dict, name: str, key: str) -> Placement:
        """`{namespace: observability, service: kps-prometheus, port: 9090}`; each key optional, a service needs its namespace."""
        for k in ("namespace", "service"):
            if k in spec and not (isinstance(spec[k], str) and NAME_PATTERN.match(spec[k])):
                raise self.fail(f"{key}.{k}", f"expected a Kubernetes name, got {spec[k]!r}")
        if "service" in spec and "namespace" not in spec:
            raise self.fail(f"{key}.namespace", "a service is named with its namespace")
        port = spec.get("port")
        if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
            raise self.fail(f"{key}.port", f"expected a port number, got {port!r}")
        secret = spec.get("credentials_secret")
        if secret is not None and name != "grafana":
            raise self.fail(f"{key}.credentials_secret", "only grafana logs in with a Secret's credentials")
        return Placement(spec.get("namespace"), spec.get("service"), port,
                         self.secret(secret, f"{key}.credentials_secret") if secret is not None else None)

    def secret(self, raw: Any, key: str) -> CredentialsSecret:
        """A Secret name (keys admin-user, admin-password as the grafana chart writes them) or {name, user_key, password_key}."""
        if isinstance(raw, str):
            raw = {"name": raw}
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise self.fail(key, "expected a Secret name or {name, user_key, password_key}")
        self.no_unknown_keys(raw, SECRET_KEYS, key)
        return CredentialsSecret(raw["name"], str(raw.get("user_key", "admin-user")),
                                 str(raw.get("password_key", "admin-password")))

    def absent(self, raw: Any, services: dict[str, Any], key: str) -> frozenset[str]:
        """`absent: [kiali, grafana]`: services this cluster's stack does not run, on purpose."""
        if raw is None:
            return frozenset()
        known = stack_services()
        if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
            raise self.fail(key, f"expected a list of service names ({', '.join(known)})")
        for name in raw:
            if name not in known:
                raise self.fail(key, f"unknown service {name!r}; expected one of {', '.join(known)}")
            if name in services:
                raise self.fail(key, f"{name} is listed under services: too; a service is either given or absent")
        return frozenset(raw)

    def url(self, raw: Any, key: str) -> str:
        if not isinstance(raw, str):
            raise self.fail(key, f"expected a URL, got {raw!r}")
        try:
            url = httpx.URL(raw)
        except (httpx.InvalidURL, TypeError) as e:
            raise self.fail(key, f"URL {raw!r} does not parse: {e}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise self.fail(key, f"URL {raw!r} does not parse: expected http(s)://host[:port][/path]")
        return raw.rstrip("/")

    def auth(self, raw: Any, key: str) -> Auth | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise self.fail(key, "expected {bearer_env: NAME} or {basic_user: U, basic_password_env: NAME}")
        self.no_unknown_keys(raw, AUTH_KEYS, key, hint="credentials are named by environment variable, never inline")
        auth = Auth(**raw)
        if auth.bearer_env and auth.basic_user:
            raise self.fail(key, "give either bearer_env or basic_user, not both")
        if auth.basic_user and not auth.basic_password_env:
            raise self.fail(f"{key}.basic_password_env", "basic_user needs basic_password_env")
        if not (auth.bearer_env or auth.basic_user):
            raise self.fail(key, "expected bearer_env or basic_user")
        for env_key in ("bearer_env", "basic_password_env"):
            env = getattr(auth, env_key)
            if env and env not in os.environ:
                raise self.fail(f"{key}.{env_key}", f"environment variable {env} is not set")
        return auth

    def file_ref(self, raw: Any, key: str) -> Path | None:
        if raw is None:
            return None
        if not isinstance(raw, dict) or set(raw) != {"file"} or not isinstance(raw["file"], str):
            raise self.fail(key, "expected {file: PATH}")
        path = self.resolve(raw["file"])
        if not path.parent.is_dir():
            raise self.fail(f"{key}.file", f"folder {path.parent} does not exist")
        return path

    def existing_file(self, raw: Any, key: str) -> Path | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise self.fail(key, f"expected a path, got {raw!r}")
        path = self.resolve(raw)
        if not path.is_file():
            raise self.fail(key, f"file {path} not found")
        return path

    def optional_str(self, item: dict, name: str, key: str) -> str | None:
        value = item.get(name)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"{key}.{name}", f"expected a string, got {value!r}")
        return value

    def resolve(self, raw: str) -> Path:
        path = Path(os.path.expanduser(raw))
        return path if path.is_absolute() else self.base / path

    def no_unknown_keys(self, item: dict, allowed: tuple[str, ...], key: str, hint: str = "") -> None:
        for k in item:
            if k not in allowed:
                where = f"{key}.{k}" if key else str(k)
                extra = f" ({hint})" if hint else ""
                raise self.fail(where, f"unknown key; expected one of {', '.join(allowed)}{extra}")
