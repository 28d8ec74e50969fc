"""The logs probes on the vector-opensearch profile: the canary line in the primary's OpenSearch, the cluster field's
values, what OpenSearch and Vector say when the line does not arrive, and OpenSearch Dashboards' index pattern."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from conformance import vector
from conformance.access import Access, ServiceAbsent
from conformance.clients.opensearch import OpenSearchClient, block_says
from conformance.eventually import NotYet
from conformance.http import APIError, HTTPService, ServiceError, single_attempts
from conformance.stack import SERVICES_FILE, _document
from conformance.topology import Cluster

PROFILES = ("vector-opensearch",)  # the stack profiles whose logs live in OpenSearch (conformance/profiles.py)
INDEX_PATTERN = "logs-*"  # the sink's daily indices logs-%Y-%m-%d, and the Dashboards index pattern people use
CLUSTER_FIELD = "kubernetes.cluster"  # where the profile's transform puts the cluster's name
MESSAGE_FIELD = "message"  # the kubernetes_logs source's log line (Vector's log_schema message_key)


def in_opensearch(profile_name: str) -> bool:
    return profile_name in PROFILES


def setting(key: str, default: str) -> str:
    """stack/services.yaml's `opensearch` row may name the index pattern and the cluster field; else the defaults."""
    row = (_document(SERVICES_FILE).get("services") or {}).get("opensearch") or {}
    return str(row.get(key, default))


@dataclass(frozen=True)
class Found:
    """The canary document: its index, its cluster field, and when the search saw it."""

    index: str
    cluster: object
    seen_at: float


def find(client: OpenSearchClient, tag: str, cluster: str) -> Found:
    """The line under cluster=<cluster>; NotYet naming what a search on the tag alone found (another cluster value)."""
    field, pattern = setting("cluster_field", CLUSTER_FIELD), setting("index_pattern", INDEX_PATTERN)
    hits = client.search_tag(pattern, tag, cluster_field=field, cluster=cluster, message_field=MESSAGE_FIELD)
    now = time.time()
    if hits:
        return Found(hits[0].index, cluster, now)
    raise NotYet(f"no document in {pattern} holds {tag} with {field}={cluster}")


def anywhere(client: OpenSearchClient, tag: str) -> list[dict]:
    """The documents holding the tag whatever their cluster field says (for the wrong or missing field)."""
    pattern = setting("index_pattern", INDEX_PATTERN)
    query = {"size": 5, "query": {"match_phrase": {MESSAGE_FIELD: tag}}}
    doc = client.http.request("POST", f"/{pattern}/_search", json=query).json()
    return [{"_index": h["_index"], **(h.get("_source") or {})} for h in doc["hits"]["hits"]]


def field_of(doc: dict, dotted: str) -> object:
    """A document's field by dotted name, nested or flat; None when absent."""
    if dotted in doc:
        return doc[dotted]
    value: object = doc
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def cluster_values(client: OpenSearchClient) -> set[str]:
    """The cluster field's values over the index pattern (a terms aggregation on its keyword sub-field, as dynamic
    mapping makes a string text with .keyword; the field itself where it is mapped as a keyword)."""
    field, pattern = setting("cluster_field", CLUSTER_FIELD), setting("index_pattern", INDEX_PATTERN)
    for name in (f"{field}.keyword", field):
        body = {"size": 0, "aggs": {"clusters": {"terms": {"field": name, "size": 500}}}}
        doc = client.http.request("POST", f"/{pattern}/_search", json=body).json()
        buckets = ((doc.get("aggregations") or {}).get("clusters") or {}).get("buckets") or []
        if buckets:
            return {str(b["key"]) for b in buckets}
    return set()


def refusal(client: OpenSearchClient, cluster: str) -> str:
    """What OpenSearch says of a write like the canary's: an index block, else the answer to one bulk item of the
    canary's shape (the message and the cluster field) into today's index, deleted again when accepted."""
    pattern = setting("index_pattern", INDEX_PATTERN)
    try:
        blocks = client.index_blocks(pattern)
        if blocks:
            return "; ".join(block_says(i, ", ".join(b)) for i, b in sorted(blocks.items()))
        index = time.strftime(pattern.replace("*", "%Y-%m-%d"), time.gmtime())
        field = setting("cluster_field", CLUSTER_FIELD)
        probe = {MESSAGE_FIELD: f"conformance-probe-{uuid.uuid4().hex[:8]}", **_nested(field, cluster)}
        answer = client.bulk([({"index": {"_index": index}}, probe)], refresh=False)
        if answer.failures:
            return f"OpenSearch answers a bulk item like the canary's with {answer.failures[0].says()}"
        _delete_probe(client, index, probe[MESSAGE_FIELD])
        return (f"a bulk item with only {MESSAGE_FIELD} and {field}={cluster} is accepted into {index}, so OpenSearch "
                f"refuses another field of Vector's documents: Vector logs the item's reason at level ERROR "
                f"(\"Not retriable; dropping the request.\" reason=\"error type: ..., reason: ...\")")
    except (ServiceError, KeyError, ValueError):
        return ""


def _delete_probe(client: OpenSearchClient, index: str, message: str) -> None:
    """Remove the accepted probe item (refreshed first, so the delete-by-query sees it)."""
    client.http.request("POST", f"/{index}/_refresh")
    client.http.request("POST", f"/{index}/_delete_by_query", json={"query": {"match_phrase": {MESSAGE_FIELD: message}}})


def _nested(dotted: str, value: str) -> dict:
    out: dict = {}
    cur = out
    parts = dotted.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


@dataclass
class VectorWatch:
    """The cluster's Vector's sink counters from before the canary."""

    http: HTTPService
    where: str
    before: vector.Counters | None = None

    def read(self) -> vector.Counters | None:
        try:
            return vector.Counters.parse(self.http.request("GET", "/metrics").text)
        except ServiceError:
            return None

    def hopeless(self) -> str | None:
        now = self.read()
        return vector.hopeless(now, self.before, self.where) if now else None

    def cause(self, source: str) -> str:
        now = self.read()
        if now is None:
            return f"{self.http.name}'s counters are not readable"
        return vector.cause(now, self.before, self.where, source)


def watch(access: Access, cluster: Cluster, where: str) -> VectorWatch | None:
    """The cluster's Vector counters from now on; None when the topology gives no way to reach them."""
    try:
        endpoint = access.endpoint(cluster, access.topology.stack_profile.agent_service)
    except ServiceAbsent:
        return None
    with single_attempts():
        found = VectorWatch(endpoint.http, where)
        found.before = found.read()
        return found


@dataclass(frozen=True)
class DashboardsStatus:
    """OpenSearch Dashboards' GET /api/status: its overall state and version."""

    state: str
    version: str


def dashboards_status(http: HTTPService) -> DashboardsStatus:
    doc = http.get_json("/api/status")
    status = doc.get("status") or {}
    overall = status.get("overall") or {}
    return DashboardsStatus(str(overall.get("state", "")), str((doc.get("version") or {}).get("number", "")))


def index_patterns(http: HTTPService) -> list[str]:
    """The titles of Dashboards' index-pattern saved objects (GET /api/saved_objects/_find?type=index-pattern)."""
    try:
        doc = http.get_json("/api/saved_objects/_find", params={"type": "index-pattern", "per_page": "1000"})
    except APIError as e:
        if e.status == 404:
            return []
        raise
    return [str((o.get("attributes") or {}).get("title", "")) for o in doc.get("saved_objects") or []]
