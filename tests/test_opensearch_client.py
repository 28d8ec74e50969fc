"""The OpenSearch client's readings of answers as OpenSearch 3.6.0 writes them (recorded from the real node)."""

from __future__ import annotations

import pytest

from conformance.clients.opensearch import BulkResult, DiskWatermarks, Health, OpenSearchClient
from conformance.core.http import NO_RETRY, HTTPService, Unreachable
from tests.proving_ground import free_port

# The real node's _bulk answer: one item created, one refused by its mapping (tests/test_real_opensearch.py).
MIXED_BULK = {"took": 317, "errors": True, "items": [
    {"index": {"_index": "logs-x", "_id": "7Er0", "_version": 1, "result": "created",
               "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": 0, "_primary_term": 1, "status": 201}},
    {"index": {"_index": "logs-x", "_id": "7Ur0", "status": 400, "error": {
        "type": "mapper_parsing_exception",
        "reason": "failed to parse field [a] of type [long] in document with id '7Ur0'. Preview of field's value: 'notanumber'",
        "caused_by": {"type": "illegal_argument_exception", "reason": "For input string: \"notanumber\""}}}}]}


def test_a_bulk_answer_with_errors_names_the_first_failed_item_and_its_cause() -> None:
    result = BulkResult.from_json(MIXED_BULK)
    assert result.errors and [i.status for i in result.items] == [201, 400]
    assert result.says() == (
        "1 of 2 items rejected; the first: index into logs-x: 400 mapper_parsing_exception: failed to parse field [a] "
        "of type [long] in document with id '7Ur0'. Preview of field's value: 'notanumber' "
        "(caused by illegal_argument_exception: For input string: \"notanumber\")")


def test_a_bulk_answer_without_errors_says_all_were_accepted() -> None:
    ok = {"errors": False, "items": [{"create": {"_index": "logs-x", "status": 201}}]}
    assert BulkResult.from_json(ok).says() == "all 1 items accepted"


def test_errors_true_without_a_failed_item_is_said_so() -> None:
    odd = {"errors": True, "items": [{"index": {"_index": "logs-x", "status": 201}}]}
    assert BulkResult.from_json(odd).says() == "0 of 1 items rejected (errors: true without a failed item)"


def health(status: str, data_nodes: int, unassigned: int = 0, indices: dict | None = None) -> Health:
    return Health.from_json({"status": status, "number_of_data_nodes": data_nodes, "active_shards": 3,
                             "unassigned_shards": unassigned, "indices": indices or {}})


def test_yellow_is_acceptable_only_on_a_single_data_node() -> None:
    assert health("yellow", 1, 2).acceptable
    three = health("yellow", 3, 2)
    assert not three.acceptable
    assert three.says() == "yellow: 2 replica shard(s) unassigned although there are 3 data nodes; every primary is active"


def test_red_names_its_red_indices_and_is_not_acceptable() -> None:
    red = health("red", 1, 1, {"logs-2026-12-05": {"status": "red"}, "logs-2026-12-04": {"status": "yellow"}})
    assert not red.acceptable
    assert red.says() == ("red: a primary shard is not active, its documents cannot be searched or written "
                          "(red: logs-2026-12-05)")


def test_disabled_disk_thresholds_are_said_so() -> None:
    marks = DiskWatermarks(threshold_enabled=False, low="85%", high="90%", flood_stage="95%",
                           enable_for_single_data_node=False)
    assert marks.says() == "disk thresholds disabled (cluster.routing.allocation.disk.threshold_enabled: false)"


def test_opensearch_down_is_unreachable_naming_the_url_and_the_refusal() -> None:
    port = free_port()  # nothing listens there once the probe socket is closed
    client = OpenSearchClient(HTTPService("opensearch", f"http://127.0.0.1:{port}", retry=NO_RETRY))
    with pytest.raises(Unreachable) as e:
        client.health()
    assert str(e.value) == f"opensearch unreachable at http://127.0.0.1:{port}/_cluster/health: connection refused"
