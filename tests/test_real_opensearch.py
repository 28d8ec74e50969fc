"""The OpenSearch client against one real node at the stack's pin (tests/real/opensearch.py): health, _bulk, search, blocks."""

from __future__ import annotations

import time
import uuid
from typing import Iterator

import pytest

from conformance.clients.opensearch import OpenSearchClient, block_says
from conformance.core.http import APIError, HTTPService
from tests.proving_ground import free_port
from tests.real import opensearch
from tests.real.opensearch import OpenSearchNode

# One JVM for the module: its tests stay on one xdist worker (the tests session runs --dist loadgroup).
pytestmark = pytest.mark.xdist_group("opensearch")

CLUSTER_FIELD = "kubernetes.cluster"  # where the profile's transform will put the cluster's name


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSearchNode]:
    built = opensearch.require()
    started = time.monotonic()
    server = OpenSearchNode(folder=tmp_path_factory.mktemp("opensearch"), port=free_port(), transport_port=free_port(),
                            built=built).start()
    print(f"opensearch {opensearch.version()} ready in {time.monotonic() - started:.1f} s")
    yield server
    server.stop()


@pytest.fixture
def client(node: OpenSearchNode) -> Iterator[OpenSearchClient]:
    http = HTTPService("opensearch", node.url)
    yield OpenSearchClient(http)
    http.close()


def test_the_node_is_the_pinned_release_built_once_into_the_cache(node: OpenSearchNode, client: OpenSearchClient) -> None:
    assert client.info()["version"]["number"] == opensearch.version()
    assert node.built == opensearch.cached_dir() and (node.built / "classpath").is_file()
    assert node.built.name == f"opensearch-{opensearch.version()}"


def test_one_node_with_a_replica_index_is_yellow_and_that_is_said_to_be_expected(client: OpenSearchClient) -> None:
    index = f"replicated-{uuid.uuid4().hex[:8]}"  # the node outlives a rerun of this test on its worker
    client.http.request("PUT", f"/{index}", json={"settings": {"number_of_shards": 1, "number_of_replicas": 1}})
    health = client.health()  # other tests' indices add their replicas (index.number_of_replicas defaults to 1)
    assert (health.status, health.data_nodes) == ("yellow", 1) and health.unassigned_shards >= 1
    assert health.acceptable
    assert health.says().startswith(f"yellow: {health.unassigned_shards} replica shard(s) unassigned on the single "
                                    f"data node, as expected (a replica is never placed on the node holding its primary)")


def test_a_primary_that_cannot_be_placed_is_red_naming_its_index(client: OpenSearchClient) -> None:
    # No node is called "nowhere": the primary stays unassigned (FilterAllocationDecider), the index is red.
    client.http.request("PUT", "/stranded", params={"wait_for_active_shards": "0"}, json={"settings": {
        "number_of_replicas": 0, "index.routing.allocation.require._name": "nowhere"}})
    try:
        health = client.health()
        assert (health.status, health.red_indices, health.acceptable) == ("red", ("stranded",), False)
        assert health.says() == ("red: a primary shard is not active, its documents cannot be searched or written "
                                 "(red: stranded)")
    finally:
        client.http.request("DELETE", "/stranded")


def test_a_line_written_through_bulk_is_found_by_tag_and_cluster(client: OpenSearchClient) -> None:
    day = "logs-2026-12-05"  # the sink's index: logs-%Y-%m-%d
    docs = [{"message": f"canary run-42 from {c}", "kubernetes": {"cluster": c, "pod_name": "canary"}}
            for c in ("remote", "remote-1")]
    result = client.bulk([({"index": {"_index": day}}, d) for d in docs])
    assert (result.errors, result.says()) == (False, "all 2 items accepted")
    hits = client.search_tag("logs-*", "run-42", cluster_field=CLUSTER_FIELD, cluster="remote")
    assert [(h.index, h.source["kubernetes"]["cluster"]) for h in hits] == [(day, "remote")]  # not remote-1
    assert client.search_tag("logs-*", "run-43", cluster_field=CLUSTER_FIELD, cluster="remote") == []
    assert client.search_tag("nothing-*", "run-42", cluster_field=CLUSTER_FIELD, cluster="remote") == []


def test_a_mapping_conflict_in_bulk_is_named_by_its_reason(client: OpenSearchClient) -> None:
    index = "logs-conflict"
    client.bulk([({"index": {"_index": index}}, {"message": "first", "kubernetes": {"cluster": "oke"}})])
    # kubernetes.cluster is an object-holding text field now; a number where an object was mapped is refused.
    result = client.bulk([({"index": {"_index": index}}, {"message": "ok", "kubernetes": {"cluster": "oke"}}),
                          ({"index": {"_index": index}}, {"message": "bad", "kubernetes": "not an object"})])
    assert result.errors and len(result.failures) == 1
    said = result.says()
    assert said.startswith(f"1 of 2 items rejected; the first: index into {index}: 400 mapper_parsing_exception: ")
    assert "[kubernetes]" in said, said


def test_a_read_only_allow_delete_block_is_named_in_bulk_and_in_the_settings(client: OpenSearchClient) -> None:
    index = "logs-blocked"
    client.bulk([({"index": {"_index": index}}, {"message": "before"})])
    client.http.request("PUT", f"/{index}/_settings", json={"index.blocks.read_only_allow_delete": True})
    try:
        result = client.bulk([({"index": {"_index": index}}, {"message": "after"})])
        said = result.says()
        # IndexMetadata.INDEX_READ_ONLY_ALLOW_DELETE_BLOCK: 429, the flood-stage watermark's own description.
        assert said.startswith(f"1 of 1 items rejected; the first: index into {index}: 429 cluster_block_exception: "), said
        assert "read-only-allow-delete block" in said, said
        assert client.index_blocks("logs-*") == {index: ("read_only_allow_delete",)}
        assert block_says(index, "read_only_allow_delete").startswith(
            f"index {index} has index.blocks.read_only_allow_delete: true (the flood-stage disk watermark sets it")
    finally:
        client.http.request("PUT", f"/{index}/_settings", json={"index.blocks.read_only_allow_delete": None})
    assert client.index_blocks("logs-*") == {}


def test_the_disk_watermarks_are_read_with_their_defaults(client: OpenSearchClient) -> None:
    marks = client.disk_watermarks()
    assert (marks.threshold_enabled, marks.low, marks.high, marks.flood_stage, marks.enable_for_single_data_node) == (
        True, "85%", "90%", "95%", False)
    assert "the flood stage still blocks writes" in marks.says()


def test_a_search_on_a_missing_index_is_an_api_error_naming_it(client: OpenSearchClient) -> None:
    with pytest.raises(APIError, match=r"opensearch POST /missing-index/_search answered 404"):
        client.search_tag("missing-index", "x", cluster_field=CLUSTER_FIELD, cluster="oke")
