"""OpenSearch's REST API (org.opensearch:opensearch 3.6.0): cluster health, a tag search, _bulk answers, index
blocks and the disk watermarks, each read as the server at the pinned version writes it (docs/real-stack.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from conformance.clients.base import ServiceClient
from conformance.core.http import NO_RETRY

DISK = "cluster.routing.allocation.disk."  # DiskThresholdSettings: the watermark settings' common prefix
BLOCKS = "index.blocks."  # IndexMetadata.APIBlock: index.blocks.<read_only|read_only_allow_delete|read|write|metadata>
NDJSON = {"Content-Type": "application/x-ndjson"}


@dataclass(frozen=True)
class Health:
    """GET /_cluster/health?level=indices: the status, its shard counts, and the indices that are red."""

    status: str  # green | yellow | red
    data_nodes: int
    active_shards: int
    unassigned_shards: int
    red_indices: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, doc: dict) -> "Health":
        indices = doc.get("indices") or {}
        return cls(status=doc["status"], data_nodes=int(doc["number_of_data_nodes"]),
                   active_shards=int(doc["active_shards"]), unassigned_shards=int(doc["unassigned_shards"]),
                   red_indices=tuple(sorted(n for n, i in indices.items() if i.get("status") == "red")))

    @property
    def acceptable(self) -> bool:
        """Green, or yellow on a single data node (its replicas cannot be placed: the expected state of one node)."""
        return self.status == "green" or (self.status == "yellow" and self.data_nodes == 1)

    def says(self) -> str:
        """The status in words: what yellow on one node means, which indices make it red."""
        if self.status == "green":
            return f"green: all {self.active_shards} shards assigned on {self.data_nodes} data node(s)"
        if self.status == "yellow" and self.data_nodes == 1:
            return (f"yellow: {self.unassigned_shards} replica shard(s) unassigned on the single data node, as expected "
                    f"(a replica is never placed on the node holding its primary); every primary is active")
        if self.status == "yellow":
            return (f"yellow: {self.unassigned_shards} replica shard(s) unassigned although there are "
                    f"{self.data_nodes} data nodes; every primary is active")
        red = f" (red: {', '.join(self.red_indices)})" if self.red_indices else ""
        return f"red: a primary shard is not active, its documents cannot be searched or written{red}"


@dataclass(frozen=True)
class Hit:
    """One document a search found."""

    index: str
    id: str
    source: dict


@dataclass(frozen=True)
class BulkItem:
    """One line of a _bulk answer: its action, index, status and, when it failed, the error type and reason."""

    action: str
    index: str
    status: int
    error_type: str = ""
    reason: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error_type) or self.status >= 300

    def says(self) -> str:
        return f"{self.action} into {self.index}: {self.status} {self.error_type}: {self.reason}".rstrip(": ")


@dataclass(frozen=True)
class BulkResult:
    """A _bulk answer: 200 even when items failed; `errors: true` says that one did (BulkResponse.toXContent)."""

    errors: bool
    items: tuple[BulkItem, ...]

    @classmethod
    def from_json(cls, doc: dict) -> "BulkResult":
        items = []
        for entry in doc.get("items") or []:
            action, item = next(iter(entry.items()))
            error = item.get("error") or {}
            reason = error.get("reason", "") if isinstance(error, dict) else str(error)
            cause = error.get("caused_by") if isinstance(error, dict) else None
            if isinstance(cause, dict) and cause.get("reason"):
                reason += f" (caused by {cause.get('type', '')}: {cause['reason']})"
            items.append(BulkItem(action=action, index=item.get("_index", ""), status=int(item.get("status", 0)),
                                  error_type=error.get("type", "") if isinstance(error, dict) else "error",
                                  reason=reason))
        return cls(errors=bool(doc.get("errors")), items=tuple(items))

    @property
    def failures(self) -> tuple[BulkItem, ...]:
        return tuple(i for i in self.items if i.failed)

    def says(self) -> str:
        """'N of M items rejected; the first: <action> into <index>: <status> <type>: <reason>', or all accepted."""
        bad = self.failures
        if not self.errors and not bad:
            return f"all {len(self.items)} items accepted"
        first = f"; the first: {bad[0].says()}" if bad else " (errors: true without a failed item)"
        return f"{len(bad)} of {len(self.items)} items rejected{first}"


@dataclass(frozen=True)
class DiskWatermarks:
    """The disk-based allocation settings in effect (defaults overlaid by persistent, then transient)."""

    threshold_enabled: bool
    low: str
    high: str
    flood_stage: str
    enable_for_single_data_node: bool

    def says(self) -> str:
        if not self.threshold_enabled:
            return "disk thresholds disabled (cluster.routing.allocation.disk.threshold_enabled: false)"
        single = ("" if self.enable_for_single_data_node else
                  "; on a single data node low and high do not hold back allocation, the flood stage still blocks writes")
        return (f"disk watermarks low {self.low}, high {self.high}, flood stage {self.flood_stage} (an index on a node "
                f"past the flood stage gets index.blocks.read_only_allow_delete){single}")


def block_says(index: str, block: str) -> str:
    """A block in words; read_only_allow_delete is what the flood-stage watermark sets (DiskThresholdMonitor)."""
    why = (" (the flood-stage disk watermark sets it, or an operator did; writes are refused until it is removed)"
           if block == "read_only_allow_delete" else "")
    return f"index {index} has {BLOCKS}{block}: true{why}"


class OpenSearchClient(ServiceClient):
    """One OpenSearch cluster's HTTP API."""

    def info(self) -> dict:
        """GET /: {name, cluster_name, version: {number, distribution, ...}}."""
        return self.http.get_json("/")

    def health(self) -> Health:
        """GET /_cluster/health?level=indices once (503 with a body before a cluster manager is elected)."""
        return Health.from_json(self.http.get_json("/_cluster/health", params={"level": "indices"}))

    def search_tag(self, pattern: str, tag: str, *, cluster_field: str, cluster: str, message_field: str = "message",
                   size: int = 10) -> list[Hit]:
        """Documents of indices `pattern` (e.g. logs-*) whose message holds `tag` and whose cluster field is `cluster`.

        The query narrows (a phrase on the message, the cluster on the field or its .keyword sub-field, as dynamic
        mapping makes a string both); the answer is then held to the exact values, so a cluster "remote" is not
        taken for "remote-1" by the text analysis. No index matching the pattern: no hits (allow_no_indices).
        """
        query = {"size": size, "query": {"bool": {
            "filter": [{"match_phrase": {message_field: tag}}],
            "should": [{"term": {cluster_field: cluster}}, {"term": {f"{cluster_field}.keyword": cluster}}],
            "minimum_should_match": 1}}}
        doc = self.http.request("POST", f"/{pattern}/_search", json=query).json()
        hits = [Hit(index=h["_index"], id=h["_id"], source=h.get("_source") or {}) for h in doc["hits"]["hits"]]
        return [h for h in hits if field_of(h.source, cluster_field) == cluster
                and tag in str(field_of(h.source, message_field) or "")]

    def bulk(self, actions: list[tuple[dict, dict | None]], refresh: bool = True) -> BulkResult:
        """POST /_bulk with (action, document) pairs as NDJSON; `refresh` makes the documents searchable at once."""
        lines = [json.dumps(line) for action, document in actions for line in (action, document) if line is not None]
        params = {"refresh": "wait_for"} if refresh else None
        r = self.http.request("POST", "/_bulk", content=("\n".join(lines) + "\n").encode(), headers=NDJSON,
                              params=params, retry=NO_RETRY)
        return BulkResult.from_json(r.json())

    def index_blocks(self, pattern: str) -> dict[str, tuple[str, ...]]:
        """The blocks set on the indices of `pattern`: {index: (read_only_allow_delete, ...)}, only indices with one."""
        doc = self.http.get_json(f"/{pattern}/_settings", params={"flat_settings": "true", "allow_no_indices": "true"})
        out = {}
        for index, body in doc.items():
            settings = body.get("settings") or {}
            blocks = tuple(sorted(k.removeprefix(BLOCKS) for k, v in settings.items()
                                  if k.startswith(BLOCKS) and str(v).lower() == "true"))
            if blocks:
                out[index] = blocks
        return out

    def disk_watermarks(self) -> DiskWatermarks:
        """GET /_cluster/settings?include_defaults=true&flat_settings=true, the cluster.routing.allocation.disk.* ones."""
        doc = self.http.get_json("/_cluster/settings", params={"include_defaults": "true", "flat_settings": "true"})
        merged: dict[str, Any] = {}
        for layer in ("defaults", "persistent", "transient"):
            merged.update({k: v for k, v in (doc.get(layer) or {}).items() if k.startswith(DISK)})
        return DiskWatermarks(
            threshold_enabled=str(merged.get(DISK + "threshold_enabled", "true")).lower() == "true",
            low=str(merged.get(DISK + "watermark.low", "")), high=str(merged.get(DISK + "watermark.high", "")),
            flood_stage=str(merged.get(DISK + "watermark.flood_stage", "")),
            enable_for_single_data_node=str(merged.get(DISK + "watermark.enable_for_single_data_node", "false")).lower()
            == "true")


def field_of(source: dict, dotted: str) -> Any:
    """A field of a document by its dotted name, as a nested object or a flat key ("kubernetes.pod_name"); None when
    absent."""
    if dotted in source:
        return source[dotted]
    value: Any = source
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
