"""conformance/probes/logs/vector_counters.py on FakeVector's exposition (Vector 0.56.0's names): what the sink's counters say, and when
waiting cannot help."""

from __future__ import annotations

from conformance.probes.logs import vector_counters as vector
from tests.fakes.vector import SINK, SOURCE, VectorMetrics

WHERE = "http://opensearch:9200"


def reading(build) -> vector.Counters:
    metrics = VectorMetrics("node-1")
    for c in (SINK, SOURCE):
        metrics.add("component_sent_events_total", c, 0)
        metrics.add("component_errors_total", c, 0, error_type="request_failed", stage="sending")
    build(metrics)
    return vector.Counters.parse(metrics.exposition())


def test_only_the_elasticsearch_sinks_series_count_under_their_exported_names():
    now = reading(lambda m: (m.add("component_sent_events_total", SOURCE, 7), m.add("component_sent_events_total", SINK, 2),
                             m.add("http_client_responses_total", SINK, 3, status="200")))
    assert (now.sent, now.responses) == (2.0, {"200": 3.0})
    text = VectorMetrics("n").exposition()
    assert "component_" not in text  # no component series before a component registers; only the heartbeat's build_info
    assert 'vector_build_info{' in text and 'version="0.56.0"' in text


def test_refused_requests_since_the_canary_are_hopeless_after_three():
    before = reading(lambda m: None)
    two = reading(lambda m: m.add("http_client_errors_total", SINK, 2, error_kind="refused"))
    three = reading(lambda m: m.add("http_client_errors_total", SINK, 3, error_kind="refused"))
    assert vector.hopeless(two, before, WHERE) is None
    said = vector.hopeless(three, before, WHERE)
    assert said.startswith("Vector cannot connect to its sink's endpoint (3 bulk requests since the canary got no "
                           "answer: refused; none answered); Vector retries them without end, backing off up to 30 s"), said
    assert said.endswith(f"and the primary OpenSearch answers at {WHERE} (its health check), so the endpoint Vector "
                         "ships to is wrong: waiting will not help"), said


def test_one_refused_try_is_enough_from_a_vector_that_never_had_an_answer():
    before = reading(lambda m: m.add("http_client_errors_total", SINK, 5, error_kind="refused"))
    one_more = reading(lambda m: m.add("http_client_errors_total", SINK, 6, error_kind="refused"))
    said = vector.hopeless(one_more, before, WHERE)
    assert said.startswith("Vector cannot connect to its sink's endpoint (1 bulk requests since the canary and 6 in all "
                           "got no answer: refused; none answered)"), said


def test_a_rejected_request_is_hopeless_at_once_and_5xx_is_only_the_timeouts_cause():
    before = reading(lambda m: None)
    rejected = reading(lambda m: (m.add("component_errors_total", SINK, 1, error_type="request_failed", stage="sending"),
                                  m.add("component_discarded_events_total", SINK, 4, intentional="false"),
                                  m.add("http_client_responses_total", SINK, 1, status="200")))
    assert vector.hopeless(rejected, before, WHERE).startswith(
        f"OpenSearch rejects Vector's bulk requests to {WHERE}: 1 failed as component_errors_total"
        '{error_type="request_failed",stage="sending"} since the canary was written (4 events discarded; '
        "HTTP answers 1× 200)")
    failing = reading(lambda m: m.add("http_client_responses_total", SINK, 3, status="503"))
    assert vector.hopeless(failing, before, WHERE) is None
    assert vector.cause(failing, before, WHERE, "f.log") == (
        f"OpenSearch fails Vector's bulk requests to {WHERE} (answers 3× 503 since the canary); Vector retries them "
        "without end, backing off up to 30 s")
    assert vector.cause(before, before, WHERE, "f.log") == (
        "Vector's sink sent nothing since the canary was written: it read nothing from f.log")
