"""The logs suite on the vector-opensearch profile's proving ground: a REAL OpenSearch 3.6.0 node fed by FakeVector
(Vector 0.56.0's elasticsearch sink), healthy and each broken hop, every failing path naming its hop and cause."""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from tests import web
from tests.proving_ground import closed_port, free_port
from tests.proving_opensearch import start_opensearch_stack
from tests.real import opensearch
from tests.real.opensearch import OpenSearchNode

# One JVM for the module, on one xdist worker with tests/test_real_opensearch.py's (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("opensearch")

CANARY = "suites.test_logs::test_log_canary_reaches_the_primary_opensearch[{}]"
HEALTH = "suites.test_logs::test_primary_opensearch_is_healthy"
VALUES = "suites.test_logs::test_opensearch_cluster_field_lists_every_cluster"
DASHBOARDS = "suites.test_logs::test_opensearch_dashboards_has_the_logs_index_pattern"
LOKI_CANARY = "suites.test_logs::test_log_canary_reaches_the_primary_loki[{}]"
HOP = "remote workstation Vector → oke OpenSearch"



@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSearchNode]:
    built = opensearch.require()
    server = OpenSearchNode(folder=tmp_path_factory.mktemp("opensearch"), port=free_port(), transport_port=free_port(),
                            built=built).start()
    yield server
    server.stop()


def test_healthy_logs_pass_on_a_real_opensearch_and_record_propagation(tmp_path, node):
    with start_opensearch_stack(tmp_path, node.url) as stack:
        result = stack.run()
        bodies = [v.statuses for v in stack.vectors.values()]
    assert result.code == 0, result.output
    for cluster in ("oke", "workstation"):
        props = result.properties(CANARY.format(cluster))
        assert re.fullmatch(r"logs-\d{4}-\d{2}-\d{2}", props["log_canary_index"]), props
        # the sink's 1 s batch, then OpenSearch's 1 s refresh at most: a propagation time, not a budget
        assert 0.0 < float(props["log_propagation_seconds"]) < 30, props
        assert "keeps logs in OpenSearch, not Loki" in result.skip_reason(LOKI_CANARY.format(cluster))
    health = result.properties(HEALTH)
    assert health["opensearch_health"] in ("green", "yellow"), health
    if health["opensearch_health"] == "yellow":
        assert "unassigned on the single data node, as expected" in health["opensearch_health_says"]
    assert result.properties(VALUES)["opensearch_cluster_values"] == "oke,workstation", result.properties(VALUES)
    assert result.properties(DASHBOARDS)["dashboards_state"] == "green", result.properties(DASHBOARDS)
    assert all(s and set(s) == {200} for s in bodies), (bodies, result.output[-3000:])
    inventory = result.output.split("drift from versions.yaml")[0]  # the profile's services, not Loki
    assert "oke opensearch " in inventory and "workstation vector " in inventory and " loki " not in inventory, inventory




def test_vector_pushing_to_a_closed_port_is_named_from_its_counters(tmp_path, node):
    port = closed_port()
    with start_opensearch_stack(tmp_path, node.url, vector_urls={"workstation": f"http://127.0.0.1:{port}"}) as stack:
        result = stack.run("-k", "canary and workstation")
    failure = result.failure(CANARY.format("workstation"))
    assert result.properties(CANARY.format("workstation"))["outcome"] == "precondition", failure
    # Three tries since the canary; or fewer, when the start-up line's batch had three before it (its backoff grows).
    said = re.match(rf"{HOP}: no canary line after \d+ s; Vector cannot connect to its sink's endpoint "
                    r"\((\d+) bulk requests since the canary(?: and (\d+) in all)? "
                    r"got no answer: error trying to connect: tcp connect error: Connection refused", failure)
    assert said and (int(said[1]) >= 3 or int(said[2] or 0) >= 3), failure
    assert "Vector retries them without end, backing off up to 30 s" in failure
    assert (f"and the primary OpenSearch answers at {node.url} (its health check), so the endpoint Vector ships to is "
            "wrong: waiting will not help") in failure, failure


def _block(url: str, value: bool | None) -> None:
    day = time.strftime("logs-%Y-%m-%d", time.gmtime())
    r = web.put(f"{url}/{day}/_settings", json={"index.blocks.read_only_allow_delete": value}, timeout=10)
    assert r.status_code == 200, r.text


@contextmanager
def flood_stage_block(url: str) -> Iterator[None]:
    """The flood-stage block, held as a disk that stays past its flood stage holds it: set again every second.

    Set once, a loaded run saw the check's own probe item accepted later in the run: the block had gone (the node's
    disk monitor, Elasticsearch 7.x's heir, is the likely releaser on a disk below the high watermark)."""
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(1.0):
            try:
                _block(url, True)
            except Exception:  # noqa: BLE001 - the next round tries again; the test's own set and reset are checked
                pass

    _block(url, True)
    keeper = threading.Thread(target=keep, name="flood-stage-block", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join(timeout=15)
        _block(url, None)


def test_opensearch_rejecting_with_a_read_only_block_is_named_with_the_block(tmp_path, node):
    with start_opensearch_stack(tmp_path, node.url) as stack:
        _wait_for_startup_lines(node.url)
        with flood_stage_block(node.url):
            result = stack.run("-k", "canary and workstation")
            logged = list(stack.vectors["workstation"].log)
    failure = result.failure(CANARY.format("workstation"))
    assert result.properties(CANARY.format("workstation"))["outcome"] == "precondition", failure
    assert re.match(rf"{HOP}: no canary line after \d+ s; OpenSearch rejects Vector's bulk requests to "
                    rf"{re.escape(node.url)}: [1-9]\d* failed as component_errors_total", failure), failure
    assert "index.blocks.read_only_allow_delete: true (the flood-stage disk watermark sets it" in failure, failure
    assert "; disk watermarks low 85%, high 90%, flood stage 95% (an index on a node past the flood stage" in failure
    assert any("cluster_block_exception" in line for line in logged), logged


def test_opensearch_rejecting_a_mapping_conflict_is_named_by_the_bulk_items_reason(tmp_path, node):
    """Another shipper wrote `kubernetes` as a string into today's index first: Vector's object there is refused per
    item (200 with errors: true), and a bulk item like the canary's gets the same reason from OpenSearch."""
    day = time.strftime("logs-%Y-%m-%d", time.gmtime())

    def other_shipper(url: str) -> None:
        web.post(f"{url}/{day}/_doc", params={"refresh": "true"}, json={"message": "x", "kubernetes": "a string"},
                   timeout=30)

    with start_opensearch_stack(tmp_path, node.url, prepare=other_shipper) as stack:
        result = stack.run("-k", "canary and workstation")
        statuses, logged = list(stack.vectors["workstation"].statuses), list(stack.vectors["workstation"].log)
    failure = result.failure(CANARY.format("workstation"))
    assert result.properties(CANARY.format("workstation"))["outcome"] == "precondition", failure
    assert re.match(rf"{HOP}: no canary line after \d+ s; OpenSearch rejects Vector's bulk requests to "
                    rf"{re.escape(node.url)}: [1-9]\d* failed as component_errors_total\{{error_type=\"request_failed\","
                    r"stage=\"sending\"\} since the canary was written \([1-9]\d* events discarded; HTTP answers "
                    r"[1-9]\d*× 200\)", failure), failure
    assert (f"OpenSearch answers a bulk item like the canary's with index into {day}: 400 mapper_parsing_exception: "
            "failed to parse field [kubernetes] of type [text]") in failure, failure
    assert set(statuses) == {200}  # the bulk answer is 200: the rejection is per item, and Vector reads it
    assert any("error type: mapper_parsing_exception" in line for line in logged), logged


def test_a_missing_cluster_field_is_named_by_what_the_line_carries(tmp_path, node):
    with start_opensearch_stack(tmp_path, node.url, fields={"workstation": {"kubernetes": {"pod_name": "c"}}}) as stack:
        result = stack.run("-k", "canary and workstation")
    failure = result.failure(CANARY.format("workstation"))
    assert re.match(rf"{HOP}: the canary line arrived in logs-\S+ with no cluster field, not "
                    r"cluster=workstation", failure), failure


def test_a_wrong_cluster_value_is_named_by_the_value(tmp_path, node):
    with start_opensearch_stack(tmp_path, node.url, fields={"workstation": {"cluster": "oke"}}) as stack:
        result = stack.run("-k", "canary and workstation")
    failure = result.failure(CANARY.format("workstation"))
    assert failure.startswith(f"{HOP}: the canary line arrived in "), failure
    assert "with cluster=oke, not cluster=workstation" in failure, failure


def test_opensearch_down_stops_the_logs_checks_at_once(tmp_path, node):
    closed = f"http://127.0.0.1:{closed_port()}"
    urls = {"oke": closed, "workstation": closed}
    with start_opensearch_stack(tmp_path, node.url, vector_urls=urls, opensearch_url=closed) as stack:
        result = stack.run()
    failure = result.failure_steady(HEALTH)
    assert failure.startswith("conformance → oke OpenSearch: oke OpenSearch still unreachable when the wait ended "
                              "after 3 s: connection refused"), failure
    for case in (CANARY.format("oke"), CANARY.format("workstation"), VALUES):  # stopped by the broken hop, not waited
        assert result.properties(case)["outcome"] == "blocked", result.properties(case)
        assert result.failure(case).startswith("not run: needs conformance → oke OpenSearch: oke OpenSearch still "
                                               "unreachable"), result.failure(case)


def test_a_red_index_fails_the_health_check_naming_it(tmp_path, node):
    web.put(f"{node.url}/stranded", params={"wait_for_active_shards": "0"}, timeout=30, json={"settings": {
        "number_of_replicas": 0, "index.routing.allocation.require._name": "nowhere"}})
    try:
        with start_opensearch_stack(tmp_path, node.url) as stack:
            result = stack.run("-k", "healthy")
    finally:
        web.delete(f"{node.url}/stranded", timeout=30)
    failure = result.failure(HEALTH)
    assert failure.startswith("conformance → oke OpenSearch: cluster health is red: a primary shard is not active"), failure
    assert "(red: stranded)" in failure


def _wait_for_startup_lines(url: str) -> None:
    """Until both start-up lines are searchable (the day's index exists to be blocked)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = web.post(f"{url}/logs-*/_search", json={"query": {"match_phrase": {"message": "log agent started"}}},
                       timeout=10)
        if r.status_code == 200 and r.json()["hits"]["total"]["value"] >= 2:
            return
        time.sleep(0.2)
    raise AssertionError("start-up lines never searchable")


def test_api_version_auto_reads_opensearch_3_as_a_type_era_elasticsearch_and_is_rejected(tmp_path, node):
    """The sink's default api_version auto takes GET / version.number's major, 3 here, and so sends `_type` (below 7,
    common.rs); OpenSearch 3.6.0 refuses the request: the profile must set api_version v8, and the diagnosis says so."""
    with start_opensearch_stack(tmp_path, node.url, api_version="auto") as stack:
        result = stack.run("-k", "canary and workstation")
        logged = list(stack.vectors["workstation"].log)
    failure = result.failure(CANARY.format("workstation"))
    assert result.properties(CANARY.format("workstation"))["outcome"] == "precondition", failure
    assert re.match(rf"{HOP}: no canary line after \d+ s; OpenSearch rejects Vector's bulk requests to "
                    rf"{re.escape(node.url)}: [1-9]\d* failed as component_errors_total", failure), failure
    assert "HTTP answers 1× 400" in failure or re.search(r"HTTP answers [2-9]× 400", failure), failure
    assert ("OpenSearch refuses a bulk action line with _type (Action/metadata line [1] contains an unknown parameter "
            "[_type]): Vector sends it when the sink's api_version is auto, reading OpenSearch 3.x as an Elasticsearch "
            "before 7 (src/sinks/elasticsearch/common.rs): set api_version to v8") in failure, failure
    assert any("client-side error, 400" in line for line in logged), logged


def test_dashboards_without_the_logs_index_pattern_names_the_pattern_and_what_it_has(tmp_path, node):
    """The Dashboards check's failing path: green, but nobody created logs-*; the message lists what there is."""
    with start_opensearch_stack(tmp_path, node.url) as stack:
        stack.dashboards.patterns = ["metrics-*"]
        result = stack.run("-k", "index_pattern")
    failure = result.failure(DASHBOARDS)
    assert result.properties(DASHBOARDS)["outcome"] == "failed", failure
    assert "conformance → oke OpenSearch Dashboards: no index pattern logs-* (index patterns: metrics-*)" in failure


def test_a_cluster_missing_from_the_cluster_field_is_named_by_its_hop(tmp_path, node):
    """The cluster-field check's own failing path: workstation's lines all say cluster=oke, so no value names it."""
    with start_opensearch_stack(tmp_path, node.url, fields={"workstation": {"cluster": "oke"}}) as stack:
        result = stack.run("-k", "cluster_field", "--timeout-scale", "0.05")
    failure = result.failure(VALUES)
    assert result.properties(VALUES)["outcome"] == "timed_out", failure
    assert failure.startswith("every Vector → oke OpenSearch: "), failure
    assert "missing: remote workstation Vector → oke OpenSearch" in failure, failure
