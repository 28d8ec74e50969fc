"""FakeAlloy and FakeLoki's 3.7.6 mode hold to the upstream facts they cite (grafana/alloy v1.18.1, grafana/loki v3.7.6)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from conformance.exposition import parse_samples
from conformance.promtail import ALLOY, Counters
from tests.fakes.alloy import USER_AGENT, FakeAlloy
from tests.fakes.loki import INSTANT_LOG_QUERY_REFUSED, FakeLoki
from tests.fakes.server import FakeServer, Response


@pytest.fixture
def loki3():
    loki = FakeLoki(version="3.7.6").start()
    yield loki
    loki.stop()


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_alloy_ships_with_its_external_labels_and_counts_under_loki_write_names(tmp_path, loki3):
    log = tmp_path / "pods.log"
    log.write_text("one\ntwo\n")
    with FakeAlloy(f"{loki3.url}/loki/api/v1/push", log, external_labels={"cluster": "workstation"}) as alloy:
        wait_for(lambda: alloy.sent_entries == 2)
        assert httpx.get(alloy.ready_url).text == "Alloy is ready.\n"
        assert httpx.get(alloy.metrics_url.removesuffix("/metrics") + "/config").status_code == 404  # no such page
        text = httpx.get(alloy.metrics_url).text
    names = {s.name for s in parse_samples(text)}
    assert {"loki_write_sent_entries_total", "loki_write_dropped_entries_total", "loki_write_batch_retries_total",
            "loki_write_request_duration_seconds_count", "loki_source_file_read_lines_total"} <= names
    assert not any(n.startswith("promtail_") for n in names)
    sent = next(s for s in parse_samples(text) if s.name == "loki_write_sent_entries_total")
    assert sent.labels == {"component_id": "loki.write.default", "component_path": "/", "host": loki3.url[7:], "tenant": ""}
    dropped = {s.labels["reason"] for s in parse_samples(text) if s.name == "loki_write_dropped_entries_total"}
    assert "queue_is_full" in dropped and len(dropped) == 5  # client.reasons, each exported at 0 for a new tenant
    counters = Counters.parse(text, ALLOY)
    assert counters.sent == 2 and counters.requests == {"204": 1} and counters.read_lines == {str(log): 2}
    [stream] = loki3.streams()
    assert stream["stream"]["cluster"] == "workstation" and stream["stream"]["filename"] == str(log)


class Flaky(FakeServer):
    """A Loki that answers 503 to the first two pushes, then 204, remembering each request's headers."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, dict[str, str]]] = []
        self.route("POST", r"/loki/api/v1/push", self.push)

    def push(self, request) -> Response:
        self.seen.append((time.monotonic(), dict(request.headers)))
        return Response(503, "busy\n") if len(self.seen) <= 2 else Response(204)


def test_alloy_retries_a_5xx_with_backoff_and_sends_as_loki_write_does(tmp_path):
    log = tmp_path / "pods.log"
    log.write_text("line\n")
    flaky = Flaky().start()
    try:
        with FakeAlloy(f"{flaky.url}/loki/api/v1/push", log, min_backoff=0.2) as alloy:
            wait_for(lambda: alloy.sent_entries == 1)
            retries = alloy.metrics.get("promtail_batch_retries_total", (alloy.host, ""))
        times = [t for t, _ in flaky.seen]
        headers = flaky.seen[0][1]
    finally:
        flaky.stop()
    assert alloy.statuses == [503, 503, 204] and retries == 2
    # dskit backoff: the first wait in [min, 2·min), the second in [2·min, 4·min).
    assert 0.2 <= times[1] - times[0] < 0.4 + 0.2 and 0.4 <= times[2] - times[1] < 0.8 + 0.2
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["user-agent"] == USER_AGENT == "Alloy/v1.18.1 (linux; helm)"
    assert lower["content-type"] == "application/x-protobuf" and lower["content-encoding"] == "snappy"


def test_loki_3_refuses_an_instant_log_query_and_still_answers_a_metric_one(loki3):
    refused = httpx.get(f"{loki3.url}/loki/api/v1/query", params={"query": '{cluster="oke"}'})
    # the query frontend writes it without a newline (../shared/contracts/loki-3.7.6: `query instant log`)
    assert (refused.status_code, refused.text) == (400, INSTANT_LOG_QUERY_REFUSED)
    assert httpx.get(f"{loki3.url}/loki/api/v1/query", params={"query": 'count_over_time({cluster="oke"}[1m])'}).status_code == 200
    old = FakeLoki(version="2.9.3").start()
    try:  # 2.9.3 answers the same query with streams: the refusal is 3.x's
        assert httpx.get(f"{old.url}/loki/api/v1/query", params={"query": '{cluster="oke"}'}).json()["data"]["resultType"] == "streams"
    finally:
        old.stop()


@pytest.mark.parametrize("labels,service_name", [
    ({"cluster": "oke", "app": "web", "job": "monitoring/web"}, "web"),  # app comes before job in the list
    ({"cluster": "oke", "job": "conformance-canary"}, "conformance-canary"),
    ({"cluster": "oke", "filename": "/x.log"}, "unknown_service"),
    ({"cluster": "oke", "service_name": "mine"}, "mine"),  # a stream's own is kept
])
def test_loki_3_gives_every_stream_a_service_name(loki3, labels, service_name):
    push = httpx.post(f"{loki3.url}/loki/api/v1/push", json={"streams": [{"stream": labels, "values": [[str(time.time_ns()), "x"]]}]})
    assert push.status_code == 204
    assert loki3.streams()[0]["stream"] == {**labels, "service_name": service_name}


def test_loki_3_limits_label_names_to_15_not_counting_service_name(loki3):
    labels = {f"l{i}": "x" for i in range(16)}
    push = httpx.post(f"{loki3.url}/loki/api/v1/push", json={"streams": [{"stream": labels, "values": [[str(time.time_ns()), "x"]]}]})
    assert push.status_code == 400 and "has 16 label names; limit 15" in push.text
    assert loki3.discarded["max_label_names_per_series"] == 1


def test_loki_3_keeps_structured_metadata_and_a_query_sees_it_as_labels(loki3):
    now = str(time.time_ns())
    body = {"streams": [{"stream": {"cluster": "oke"}, "values": [[now, "traced", {"trace_id": "abc"}]]}]}
    assert httpx.post(f"{loki3.url}/loki/api/v1/push", json=body).status_code == 204
    found = httpx.get(f"{loki3.url}/loki/api/v1/query_range", params={"query": '{cluster="oke"} | trace_id="abc"'}).json()
    [stream] = found["data"]["result"]
    assert stream["stream"]["trace_id"] == "abc" and stream["values"][0][1] == "traced"
    assert "trace_id" not in loki3.streams()[0]["stream"]  # metadata, not an indexed label of the stream
    assert json.dumps(found).count("traced") == 1


@pytest.mark.parametrize("line,labels,level", [
    ('{"level": "error", "msg": "boom"}', {}, "error"),  # a JSON field
    ("hello level=info", {}, "info"),  # a logfmt key
    ('time=1 LVL=WRN msg="x"', {}, "warn"),  # keys compared case-insensitively, values normalised
    ("no level in line", {"level": "critical"}, "critical"),  # a level label wins over the line
    ("[ERROR] disk full", {}, "error"),  # words in a plain line
    ("gzipped abc", {}, "unknown"),
])
def test_loki_3_splits_a_stream_by_the_detected_level_of_its_lines(loki3, line, labels, level):
    """3.x adds detected_level (structured metadata) to each entry; a query merges it into the stream's labels."""
    body = {"streams": [{"stream": {"cluster": "oke", **labels}, "values": [[str(time.time_ns()), line]]}]}
    assert httpx.post(f"{loki3.url}/loki/api/v1/push", json=body).status_code == 204
    found = httpx.get(f"{loki3.url}/loki/api/v1/query_range", params={"query": '{cluster="oke"}'}).json()
    assert [s["stream"]["detected_level"] for s in found["data"]["result"]] == [level]
    assert "detected_level" not in loki3.streams()[0]["stream"]
