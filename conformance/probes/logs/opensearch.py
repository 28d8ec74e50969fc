"""The logs probes on the vector-opensearch profile: the canary line in the primary's OpenSearch, the cluster field's
values, what OpenSearch and Vector say when the line does not arrive, and OpenSearch Dashboards' index pattern."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from conformance.probes.logs import vector_counters as vector
from conformance.core.access import Access, ServiceAbsent
from conformance.clients.opensearch import NDJSON, OpenSearchClient, block_says, field_of
from conformance.core.eventually import NotYet
from conformance.core.http import NO_RETRY, APIError, HTTPService, ServiceError, single_attempts
from conformance.core.stack import SERVICES_FILE, _document
from conformance.core.topology import Cluster

PROFILES = ("vector-opensearch",)  # the stack profiles whose logs live in OpenSearch (conformance/core/profiles.py)
INDEX_PATTERN = "logs-*"  # the sink's daily indices logs-%Y-%m-%d, and the Dashboards index pattern people use
CLUSTER_FIELD = "cluster"  # where the profile's remap puts the cluster's name (stack/values/vector.yaml)
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


def arrived_elsewhere(client: OpenSearchClient, tag: str, cluster: str) -> str:
    """Where the line arrived under another cluster value, or without the field ("" when not at all): the transform's
    configuration, so no later line can arrive differently."""
    field = setting("cluster_field", CLUSTER_FIELD)
    docs = anywhere(client, tag)
    if not docs:
        return ""
    value = field_of(docs[0], field)
    if value == cluster:  # refreshed between the two searches: the next look finds it under its cluster
        return ""
    carried = f"{field}={value}" if value is not None else f"no {field} field"
    return f"the canary line arrived in {docs[0]['_index']} with {carried}, not {field}={cluster}"


def cluster_values(client: OpenSearchClient) -> set[str]:
    """The cluster field's values over the index pattern (a terms aggregation on its keyword sub-field, as dynamic
    mapping makes a string text with .keyword; the field itself where it is mapped as a keyword)."""
    field, pattern = setting("cluster_field", CLUSTER_FIELD), setting("index_pattern", INDEX_PATTERN)
    for name in (f"{field}.keyword", field):
        body = {"size": 0, "aggs": {"clusters": {"terms": {"field": name, "size": 500}}}}
        try:
            doc = client.http.request("POST", f"/{pattern}/_search", json=body).json()
        except APIError as e:
            if name == field and e.status == 400 and "Text fields are not optimised" in e.body:
                return set()  # mapped as text: its keyword sub-field, asked first, holds no value yet
            raise
        buckets = ((doc.get("aggregations") or {}).get("clusters") or {}).get("buckets") or []
        if buckets:
            return {str(b["key"]) for b in buckets}
    return set()


def refusal(client: OpenSearchClient, cluster: str, whole_request: bool = False) -> str:
    """What OpenSearch says of a write like the canary's: an index block; else, when whole requests were refused
    (a 4xx, not per item), whether it refuses the `_type` Vector sends with api_version auto; else the answer to one
    bulk item of the canary's shape (the message and the cluster field) into today's index, deleted when accepted."""
    pattern = setting("index_pattern", INDEX_PATTERN)
    try:
        blocks = client.index_blocks(pattern)
        if blocks:
            said = "; ".join(block_says(i, ", ".join(b)) for i, b in sorted(blocks.items()))
            flood = any("read_only_allow_delete" in b for b in blocks.values())
            return f"{said}; {client.disk_watermarks().says()}" if flood else said
        index = time.strftime(pattern.replace("*", "%Y-%m-%d"), time.gmtime())
        field = setting("cluster_field", CLUSTER_FIELD)
        # kubernetes_logs annotates every line with kubernetes.pod_name, pod_namespace, ... (vector v0.56.0
        # src/sources/kubernetes_logs/pod_metadata_annotator.rs): a mapping the store holds for them is tried too.
        probe = {MESSAGE_FIELD: f"conformance-probe-{uuid.uuid4().hex[:8]}",
                 "kubernetes": {"pod_name": "conformance-probe", "pod_namespace": "conformance-probe"}}
        probe = _merged(probe, _nested(field, cluster))
        if whole_request:
            typed = _bulk(client, {"_type": "_doc", "_index": index}, probe)
            if typed.get("status") == 400 and "[_type]" in str(typed.get("error")):
                return (f"OpenSearch refuses a bulk action line with _type ({_reason(typed)}): Vector sends it when the "
                        f"sink's api_version is auto, reading OpenSearch {_major(client)}.x as an Elasticsearch before 7 "
                        f"(src/sinks/elasticsearch/common.rs): set api_version to v8")
        answer = _bulk(client, {"_index": index}, probe)
        item = next(iter((answer.get("items") or [{}])[0].values()), {})
        if item.get("error"):
            error = item["error"]
            cause = error.get("caused_by") or {}
            more = f" (caused by {cause.get('type', '')}: {cause.get('reason', '')})" if cause else ""
            return (f"OpenSearch answers a bulk item like the canary's with index into {item.get('_index', index)}: "
                    f"{item.get('status')} {error.get('type', '')}: {error.get('reason', '')}{more}")
        if item.get("_id"):
            client.http.request("DELETE", f"/{item['_index']}/_doc/{item['_id']}")
        return (f"a bulk item with only {MESSAGE_FIELD} and {field}={cluster} is accepted into {index}, so OpenSearch "
                f"refuses another field of Vector's documents: Vector logs the item's reason at level ERROR "
                f"(\"Not retriable; dropping the request.\" reason=\"error type: ..., reason: ...\")")
    except (ServiceError, KeyError, ValueError, StopIteration):
        return ""


def _bulk(client: OpenSearchClient, action: dict, document: dict) -> dict:
    """One _bulk of one item, its JSON answer whatever the status (a whole request refused is a 4xx with a body)."""
    body = (json.dumps({"index": action}) + "\n" + json.dumps(document) + "\n").encode()
    try:
        r = client.http.request("POST", "/_bulk", content=body, headers=NDJSON, retry=NO_RETRY)
    except APIError as e:
        return {"status": e.status, "error": e.body}
    return r.json()


def _reason(answer: dict) -> str:
    try:
        return json.loads(answer["error"])["error"]["reason"]
    except (ValueError, KeyError, TypeError):
        return str(answer.get("error", ""))[:200]


def _major(client: OpenSearchClient) -> str:
    try:
        return str(client.info()["version"]["number"]).split(".")[0]
    except (ServiceError, KeyError):
        return "?"


def _merged(base: dict, extra: dict) -> dict:
    """`extra`'s fields over `base`, objects merged (a cluster field under kubernetes joins the pod's fields)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


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

    def whole_requests_refused(self) -> bool:
        """Some bulk request since the canary was answered 4xx as a whole (not 200 with errors per item)."""
        now = self.read()
        grown = now.since(self.before) if now else vector.Counters()
        return any(s.startswith("4") and s != "429" for s in grown.responses)

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


def opensearch_hop(cluster, primary, agent: str) -> str:
    return f"{'' if cluster.is_primary else 'remote '}{cluster.name} {agent} → {primary.name} OpenSearch"
