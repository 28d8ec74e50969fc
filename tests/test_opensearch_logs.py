"""conformance/probes/logs/opensearch.py's reading of a search on the tag alone: another cluster value or no field is the
transform's fault; the right value (a refresh between the two searches) is no verdict at all."""

from __future__ import annotations

from types import SimpleNamespace

from conformance.probes.logs import opensearch as opensearch_logs


class Answers:
    """An OpenSearchClient whose every search answers the given documents."""

    def __init__(self, *sources: dict) -> None:
        hits = [{"_index": "logs-2026-12-05", "_source": s} for s in sources]
        answer = SimpleNamespace(json=lambda: {"hits": {"hits": hits}})
        self.http = SimpleNamespace(request=lambda *a, **k: answer)


def test_a_line_under_another_cluster_or_without_the_field_is_named_by_what_it_carries():
    other = Answers({"message": "tag", "cluster": "oke"})
    assert opensearch_logs.arrived_elsewhere(other, "tag", "remote") == (
        "the canary line arrived in logs-2026-12-05 with cluster=oke, not cluster=remote")
    bare = Answers({"message": "tag", "kubernetes": {"pod_name": "p"}})
    assert opensearch_logs.arrived_elsewhere(bare, "tag", "remote") == (
        "the canary line arrived in logs-2026-12-05 with no cluster field, not cluster=remote")


def test_a_line_that_became_searchable_between_the_two_searches_is_no_verdict():
    assert opensearch_logs.arrived_elsewhere(Answers({"message": "t", "cluster": "remote"}), "t", "remote") == ""
    assert opensearch_logs.arrived_elsewhere(Answers(), "t", "remote") == ""
