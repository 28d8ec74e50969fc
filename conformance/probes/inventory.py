"""The stack inventory, taken once at the start of a run: per cluster, each service, where it was found and the version
its own build-info endpoint reports; compared with stack/versions.yaml as a `should` drift table."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Callable

from conformance.core.access import Access, ServiceAbsent
from conformance.core.discovery import Ambiguous, Located, NotFound
from conformance.core.http import ServiceError, single_attempts
from conformance.core.outcomes import Failed, NotApplicable, Unobservable
from conformance.core.profiles import foreign_services
from conformance.core.providers import provider_of
from conformance.core.versions import Versions
from conformance.core.redact import redact
from conformance.core.stack import stack_services
from conformance.core.topology import Cluster, Topology

# The optional part a service belongs to (topology parts:); the others are always part of the stack.
PART_OF = {"alertmanager": "alerting", "pushgateway": "kube-bench", "jaeger": "tracing",
           "kube-state-metrics": "kube-state-metrics", "event-exporter": "events"}
NOT_INVENTORIED = ("helloworld",)  # the project's sample app, not a service of the stack


def _build_info_metric(name: str) -> Callable[[Any], str]:
    def version(text: str) -> str:  # the label `version`, not one ending so (Vector's rust_version, Go's goversion)
        found = re.search(name + r'_build_info\{(?:[^}]*,)?version="([^"]+)"', text)
        if not found:
            raise KeyError(f"{name}_build_info")
        return found.group(1)
    return version


# Per service: the path of its own build-info endpoint, whether it answers JSON, and where the version is in the answer.
BUILD_INFO: dict[str, tuple[str, bool, Callable[[Any], str]]] = {
    "prometheus": ("/api/v1/status/buildinfo", True, lambda d: d["data"]["version"]),
    "alertmanager": ("/api/v2/status", True, lambda d: d["versionInfo"]["version"]),
    "loki": ("/loki/api/v1/status/buildinfo", True, lambda d: d["version"]),
    "grafana": ("/api/health", True, lambda d: d["version"]),
    "kiali": ("/api/status", True, lambda d: d["status"]["Kiali version"]),
    "pushgateway": ("/api/v1/status", True, lambda d: d["data"]["build_information"]["version"]),
    "promtail": ("/metrics", False, _build_info_metric("promtail")),
    "alloy": ("/metrics", False, _build_info_metric("alloy")),
    # istiod serves version.Info.String(), "<version>-<git revision>-<build status>", on its monitoring port
    # (istio 1.29.6 pilot/pkg/bootstrap/monitoring.go, pkg/version/version.go).
    "istiod": ("/version", False, lambda text: text.strip().rsplit("-", 2)[0]),
    # The vector-opensearch profile (issue 20). OpenSearch 3.6.0 RestMainAction serves MainResponse at GET /:
    # version.number; OpenSearch Dashboards' GET /api/status (core/server/status/routes/status.ts): version.number.
    "opensearch": ("/", True, lambda d: d["version"]["number"]),
    "opensearch-dashboards": ("/api/status", True, lambda d: d["version"]["number"]),
    # Vector 0.56.0's heartbeat sets the gauge build_info{version=PKG_VERSION,...} every second (src/internal_events/
    # heartbeat.rs); internal_metrics' namespace `vector` makes it vector_build_info on the prometheus_exporter sink.
    "vector": ("/metrics", False, _build_info_metric("vector")),
}
# Why a found service's version is not asked (its build info is not on what the suite found).
NO_BUILD_INFO = {
    "kube-state-metrics": "kube_state_metrics_build_info is on its telemetry port only (v2.20.0 pkg/app/server.go), "
                          "which the chart's Service has only with selfMonitor.enabled",
    "event-exporter": "its build_info is on the metrics Service the chart renders only with metrics.enabled",
}
# Pins that are an image tag naming a variant after the version (the vector chart's appVersion
# 0.56.0-distroless-libc): what the service reports (0.56.0) is compared with the tag's version part.
TAG_WITH_VARIANT = ("vector",)


@dataclass(frozen=True)
class Entry:
    """One service of one cluster: where it is (or why it was not found) and the version it reports."""

    cluster: str
    service: str
    where: str = ""  # namespace/name:port, or the topology's URL
    how: str = ""  # topology, bring-up name, url, or the discovery rule that matched
    version: str = ""
    problem: str = ""  # not found, ambiguous, no answer: one line
    declared_absent: bool = False

    def line(self) -> str:
        name = f"{self.cluster} {self.service}"
        if self.declared_absent:
            return f"  {name:<24} declared absent"
        if not self.where:
            return f"  {name:<24} NOT FOUND: {self.problem}"
        version = self.version or f"version unknown ({self.problem})"
        return f"  {name:<24} {self.where} [{self.how}]  {version}"


def services_of(topology: Topology, cluster: Cluster) -> list[str]:
    """The services the stack runs on this cluster (its role, its profile's agent, its parts)."""
    foreign = foreign_services(topology.profile)  # another profile's log pipeline
    out = []
    for key, spec in stack_services(profile=topology.profile).items():
        if key in NOT_INVENTORIED or cluster.role not in spec.roles or key in foreign:
            continue
        if key in PART_OF and not topology.has(PART_OF[key]):
            continue
        out.append(key)
    return out


NO_ENDPOINT = "no build-info endpoint known"


def _take(access: Access, cluster: Cluster, service: str) -> Entry:
    try:
        endpoint = access.endpoint(cluster, service)
    except NotApplicable:
        return Entry(cluster.name, service, declared_absent=True)
    except (Unobservable, ServiceError) as e:
        return Entry(cluster.name, service, problem=redact(str(getattr(e, "reason", None) or e)).splitlines()[0])
    if endpoint.via == "url":
        where, how = endpoint.http.base_url, "url"
    else:
        found = access.located(cluster, service)
        where, how = found.where, found.how
    if service not in BUILD_INFO:
        return Entry(cluster.name, service, where, how, problem=NO_BUILD_INFO.get(service, NO_ENDPOINT))
    path, is_json, version_of = BUILD_INFO[service]
    try:
        with single_attempts():
            answer = endpoint.http.get_json(path) if is_json else endpoint.http.request("GET", path).text
        return Entry(cluster.name, service, where, how, version=str(version_of(answer)))
    except ServiceError as e:
        return Entry(cluster.name, service, where, how, problem=redact(e.headline).splitlines()[0])
    except (KeyError, TypeError, IndexError, ValueError) as e:
        return Entry(cluster.name, service, where, how, problem=f"{path} does not say ({type(e).__name__}: {e})")


def take_inventory(access: Access) -> list[Entry]:
    """Every cluster's services found and asked their version, side by side; each ask is one bounded attempt."""
    topo = access.topology
    pairs = [(c, s) for c in topo.clusters for s in services_of(topo, c)]
    for c, _ in pairs:  # one look per API server before the threads share it (endpoints clusters have none)
        try:
            access.kube(c)
        except Unobservable:
            pass
    with ThreadPoolExecutor(max_workers=min(8, len(pairs) or 1)) as pool:
        return list(pool.map(lambda p: _take(access, *p), pairs))


ERRORS = {cls.__name__: cls for cls in (NotFound, Ambiguous, ServiceAbsent)}


def to_json(entries: list[Entry], access: Access) -> str:
    """The inventory and the locations behind it (or why none), for the hop board: xdist workers do not look again."""
    found = {f"{c}|{s}": v.to_json() if isinstance(v, Located) else {"error": type(v).__name__, "reason": v.reason}
             for (c, s), v in access.found.items() if isinstance(v, Located) or type(v).__name__ in ERRORS}
    return json.dumps({"entries": [asdict(e) for e in entries], "found": found})


def from_json(text: str, access: Access) -> list[Entry]:
    """The controller's inventory; its locations go into access.found."""
    doc = json.loads(text)
    for key, loc in doc["found"].items():
        cluster, service = key.split("|")
        base = stack_services(profile=access.topology.profile)[service]
        access.found[(cluster, service)] = (ERRORS[loc["error"]](loc["reason"]) if "error" in loc
                                            else Located.from_json(base, loc))
    return [Entry(**e) for e in doc["entries"]]


# The versions.yaml pin each service's reported version is compared with, per profile where it differs.
def pinned(service: str, versions: Versions, profile: str) -> str | None:
    """The version stack/versions.yaml pins for what this service runs, or None when it pins none."""
    apps = versions.apps
    if service == "loki":
        return apps.get("loki3") if profile == "alloy" else versions.loki_image_tag
    if service == "kiali":
        chart = versions.charts.get("kiali-operator")
        return chart.version if chart else None
    if service == "istiod":
        return versions.istio
    if service not in BUILD_INFO:  # nothing is asked: no drift can be told
        return None
    pin = apps.get(service)
    return version_part(pin) if pin and service in TAG_WITH_VARIANT else pin


def version_part(tag: str) -> str:
    """An image tag's version: `0.56.0-distroless-libc` -> `0.56.0`."""
    found = re.match(r"v?\d+(?:\.\d+)*", tag)
    return found.group(0) if found else tag


def pin_words(service: str, versions: Versions, profile: str) -> str:
    """The pin as the drift rows say it: with the image tag whose version part it is, when it is one."""
    pin, tag = pinned(service, versions, profile), versions.apps.get(service)
    if service in TAG_WITH_VARIANT and tag and tag != pin:
        return f"{pin} (the version part of the image tag {tag})"
    return str(pin)


def same_version(a: str, b: str) -> bool:
    return a.removeprefix("v") == b.removeprefix("v")


def drifted(entries: list[Entry], versions: Versions, profile: str) -> list[tuple[Entry, str]]:
    """Each found service whose reported version differs from its pin, or is unknown, with that pin."""
    out = []
    for e in entries:
        pin = pinned(e.service, versions, profile)
        if pin is not None and e.where and not (e.version and same_version(e.version, pin)):
            out.append((e, pin))
    return out


def _drift_row(e: Entry, versions: Versions, profile: str) -> str:
    return f"{e.service}: pinned {pin_words(e.service, versions, profile)}, running {e.version or 'version unknown'}"


def drift(entries: list[Entry], versions: Versions, profile: str) -> list[str]:
    """The `should` drift table: each reported version beside its pin; a row per service that differs or is unknown."""
    return [f"  {e.cluster} {_drift_row(e, versions, profile)}" for e, _ in drifted(entries, versions, profile)]


def drift_failure(cluster: str, entries: list[Entry], versions: Versions, profile: str) -> Failed | None:
    """The `should` check's verdict on one cluster: the services that run other versions than the pins, or None;
    Unobservable when no found service of the cluster has a pin to be compared with."""
    mine = [e for e in entries if e.cluster == cluster]
    if not any(e.where and pinned(e.service, versions, profile) for e in mine):
        raise Unobservable(f"not run: no service of {cluster} was found with a version pinned in {versions.path.name} "
                           "(the stack inventory says why for each)")
    rows = drifted(mine, versions, profile)
    if not rows:
        return None
    said = "; ".join(_drift_row(e, versions, profile) for e, _ in rows)
    where = "\n".join(f"{e.service}: {e.where} [{e.how}]" + (f" ({e.problem})" if e.problem else "") for e, _ in rows)
    return Failed(f"{cluster} stack versions", f"{len(rows)} of its services differ from the pins of "
                                               f"{versions.path.name} (the versions this suite was proven at): {said}",
                  f"read where the inventory found them:\n{where}", final=True)


def described(access: Access) -> dict[str, str]:
    """How the run reaches each cluster, as its provider describes itself."""
    return {c.name: f"{c.role}, {provider_of(access, c).describe()}" for c in access.topology.clusters}


def lines(entries: list[Entry], versions: Versions | None, profile: str, clusters: dict[str, str] | None = None) -> list[str]:
    """The inventory as the console and the reports show it first: the clusters, then each service."""
    out = ["stack inventory (where each service was found, the version it reports):"]
    out += [f"  {name}: {how}" for name, how in (clusters or {}).items()]
    out += [e.line() for e in entries] or ["  no service to look for"]
    if versions is not None:
        rows = drift(entries, versions, profile)
        out.append(f"drift from {versions.path.name} (should): " + ("none" if not rows else f"{len(rows)}"))
        out += rows
    return out
