"""FakeAlloy and FakeLoki's 3.7.6 mode hold to the upstream facts they cite (grafana/alloy v1.18.1, grafana/loki v3.7.6)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from conformance.core.exposition import parse_samples
from conformance.probes.logs.agent_counters import ALLOY, NO_ANSWER, Counters
from tests import web
from tests.fakes import promtail as promtail_fake
from tests.fakes.alloy import USER_AGENT, FakeAlloy
from tests.fakes.promtail import Backoff
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
        assert web.get(alloy.ready_url).text == "Alloy is ready.\n"
        assert web.get(alloy.metrics_url.removesuffix("/metrics") + "/config").status_code == 404  # no such page
        text = web.get(alloy.metrics_url).text
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
    # dskit backoff: the first wait in [min, 2·min), the second in [2·min, 4·min). A sleep never runs short, only
    # long under load: the lower bounds and the growth are the evidence; the upper bound only rules out minutes.
    first, second = times[1] - times[0], times[2] - times[1]
    assert 0.2 <= first and 0.4 <= second and second < 5
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["user-agent"] == USER_AGENT == "Alloy/v1.18.1 (linux; helm)"
    assert lower["content-type"] == "application/x-protobuf" and lower["content-encoding"] == "snappy"


def test_loki_3_refuses_an_instant_log_query_and_still_answers_a_metric_one(loki3):
    refused = web.get(f"{loki3.url}/loki/api/v1/query", params={"query": '{cluster="oke"}'})
    # the query frontend writes it without a newline (../shared/contracts/loki-3.7.6: `query instant log`)
    assert (refused.status_code, refused.text) == (400, INSTANT_LOG_QUERY_REFUSED)
    assert web.get(f"{loki3.url}/loki/api/v1/query", params={"query": 'count_over_time({cluster="oke"}[1m])'}).status_code == 200
    old = FakeLoki(version="2.9.3").start()
    try:  # 2.9.3 answers the same query with streams: the refusal is 3.x's
        assert web.get(f"{old.url}/loki/api/v1/query", params={"query": '{cluster="oke"}'}).json()["data"]["resultType"] == "streams"
    finally:
        old.stop()


@pytest.mark.parametrize("labels,service_name", [
    ({"cluster": "oke", "app": "web", "job": "monitoring/web"}, "web"),  # app comes before job in the list
    ({"cluster": "oke", "job": "conformance-canary"}, "conformance-canary"),
    ({"cluster": "oke", "filename": "/x.log"}, "unknown_service"),
    ({"cluster": "oke", "service_name": "mine"}, "mine"),  # a stream's own is kept
])
def test_loki_3_gives_every_stream_a_service_name(loki3, labels, service_name):
    push = web.post(f"{loki3.url}/loki/api/v1/push", json={"streams": [{"stream": labels, "values": [[str(time.time_ns()), "x"]]}]})
    assert push.status_code == 204
    assert loki3.streams()[0]["stream"] == {**labels, "service_name": service_name}


def test_loki_3_limits_label_names_to_15_not_counting_service_name(loki3):
    labels = {f"l{i}": "x" for i in range(16)}
    push = web.post(f"{loki3.url}/loki/api/v1/push", json={"streams": [{"stream": labels, "values": [[str(time.time_ns()), "x"]]}]})
    assert push.status_code == 400 and "has 16 label names; limit 15" in push.text
    assert loki3.discarded["max_label_names_per_series"] == 1


def test_loki_3_keeps_structured_metadata_and_a_query_sees_it_as_labels(loki3):
    now = str(time.time_ns())
    body = {"streams": [{"stream": {"cluster": "oke"}, "values": [[now, "traced", {"trace_id": "abc"}]]}]}
    assert web.post(f"{loki3.url}/loki/api/v1/push", json=body).status_code == 204
    found = web.get(f"{loki3.url}/loki/api/v1/query_range", params={"query": '{cluster="oke"} | trace_id="abc"'}).json()
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
    assert web.post(f"{loki3.url}/loki/api/v1/push", json=body).status_code == 204
    found = web.get(f"{loki3.url}/loki/api/v1/query_range", params={"query": '{cluster="oke"}'}).json()
    assert [s["stream"]["detected_level"] for s in found["data"]["result"]] == [level]
    assert "detected_level" not in loki3.streams()[0]["stream"]


# -- held to the recording: ../shared/contracts/alloy-1.18.1/README.md ------------------------------------------
WRITE = {"component_id": "loki.write.default", "component_path": "/"}
SOURCE = {"component_id": "loki.source.file.pods", "component_path": "/"}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> tuple[str, str, str]:
    """(Alloy's /metrics after two lines reached Loki 3.7.6, Loki's host:port, the file's path)."""
    log = tmp_path_factory.mktemp("alloy") / "pods.log"
    log.write_text("one\ntwo\n")
    loki = FakeLoki(version="3.7.6").start()
    host = loki.url.removeprefix("http://")
    try:
        with FakeAlloy(f"{loki.url}/loki/api/v1/push", log) as alloy:
            wait_for(lambda: alloy.sent_entries == 2)
            text = web.get(alloy.metrics_url).text
    finally:
        loki.stop()
    return text, host, str(log)


# name, labels: every series the recording shows after two lines reached Loki ("{host}", "{path}" filled in).
RECORDED_SERIES = [
    # README "Metric names and labels": every loki.write series is {host, tenant} (tenant "" without tenant_id)
    # plus the component's component_id/component_path; host is the URL's host:port.
    ("loki_write_sent_entries_total", {**WRITE, "host": "{host}", "tenant": ""}),
    ("loki_write_sent_bytes_total", {**WRITE, "host": "{host}", "tenant": ""}),
    ("loki_write_batch_retries_total", {**WRITE, "host": "{host}", "tenant": ""}),
    # all five drop reasons exist at 0 from the first entry on
    *[(f"loki_write_dropped_{what}_total", {**WRITE, "host": "{host}", "reason": reason, "tenant": ""})
      for what in ("entries", "bytes")
      for reason in ("ingester_error", "rate_limited", "stream_limited", "line_too_long", "queue_is_full")],
    # request_duration carries the answer's status_code (204 here: Loki accepted the push)
    ("loki_write_request_duration_seconds_count", {**WRITE, "host": "{host}", "status_code": "204", "tenant": ""}),
    ("loki_write_request_size_bytes_count", {**WRITE, "host": "{host}", "tenant": ""}),
    ("loki_write_entry_propagation_latency_seconds_count", {**WRITE, "host": "{host}", "tenant": ""}),
    # loki.source.file's carry its own component_id and the file's path; files_active_total has no path
    ("loki_source_file_read_lines_total", {**SOURCE, "path": "{path}"}),
    ("loki_source_file_read_bytes_total", {**SOURCE, "path": "{path}"}),
    ("loki_source_file_file_bytes_total", {**SOURCE, "path": "{path}"}),
    ("loki_source_file_files_active_total", SOURCE),
]


def test_alloy_exports_the_recorded_series_and_no_other(shipped):
    """The series, each with its labels, as the recording shows them; none it did not show."""
    text, host, path = shipped
    samples = parse_samples(text)
    missing = [(name, labels) for name, labels in RECORDED_SERIES
               if {k: v.format(host=host, path=path) for k, v in labels.items()}
               not in [s.labels for s in samples if s.name == name]]
    assert not missing, f"not exported as recorded: {missing}"
    names = {s.name for s in samples}
    assert "loki_write_last_read_timestamp" not in names  # only with the WAL enabled
    assert not any(n.startswith("promtail_") or "encoded_bytes" in n for n in names)
    assert not any("cluster" in s.labels or "job" in s.labels for s in samples)  # no stream labels


class Answering(FakeServer):
    """A Loki push endpoint that answers every push alike (the recording's 400 and 429 bodies)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__()
        self.route("POST", r"/loki/api/v1/push", lambda r: Response(status, text + "\n"))


TOO_OLD = ("entry for stream '{cluster=\"workstation\", filename=\"/tmp/app.log\", job=\"reject\"}' has "
           "timestamp too old: 2020-01-01T00:00:00Z, oldest acceptable timestamp is: 2026-12-05T06:41:21Z")
RATE = ("ingestion rate limit exceeded for user fake (limit: 524 bytes/sec) while attempting to ingest '1' lines "
        "totaling '5030' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased")
GIVE_UP = 'level=error msg="final error sending batch, no retries left, dropping data"'
RETRY = 'level=debug msg="error sending batch, will retry"'


def _closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/loki/api/v1/push"


@pytest.mark.parametrize("case,answer,options,tries,retries,reason,error", [
    # (a) Loki unreachable: 10 tries (max_backoff_retries), each counted as a retry and logged at debug, then one
    # error line and the batch dropped as ingester_error (no reason of its own for a connection error).
    ("closed port", None, {}, 10, 10, "ingester_error",
     'status=-1 tenant="" error="Post \\"{url}\\": dial tcp {host}: connect: connection refused"'),
    # (b) 400: not retried, dropped at once as ingester_error; the error quotes Loki's first body line.
    ("400", (400, TOO_OLD), {}, 1, 0, "ingester_error",
     'status=400 tenant="" error="server returned HTTP status 400 Bad Request (400): ' + TOO_OLD.replace('"', '\\"') + '"'),
    # (b) 429 with the defaults: retried (retry_on_http_429 true) 10 times, then dropped as rate_limited.
    ("429", (429, RATE), {}, 10, 10, "rate_limited",
     'status=429 tenant="" error="server returned HTTP status 429 Too Many Requests (429): ' + RATE + '"'),
    # (b) 429 with max_backoff_retries=3: three requests, three retries counted.
    ("429, max_backoff_retries=3", (429, RATE), {"max_retries": 3}, 3, 3, "rate_limited", "status=429 "),
])
def test_alloy_gives_up_as_the_recording_shows(tmp_path, case, answer, options, tries, retries, reason, error):
    """A compressed schedule (min_backoff 1 ms; the real one gives up after 256.5-512 s) with the real tries."""
    server = Answering(*answer).start() if answer else None
    url = f"{server.url}/loki/api/v1/push" if server else _closed_url()
    log = tmp_path / "app.log"
    log.write_text("line\n")
    try:
        with FakeAlloy(url, log, min_backoff=0.001, log_level="debug", **options) as alloy:
            wait_for(lambda: alloy.dropped_entries == 1)
            counters = Counters.parse(web.get(alloy.metrics_url).text, ALLOY)
    finally:
        if server:
            server.stop()
    code = str(alloy.statuses[0])
    assert counters.requests == {code: tries} and counters.retries == retries and counters.sent == 0
    assert {r: n for r, n in counters.dropped.items() if n} == {reason: 1}
    *retried, final = alloy.log
    assert len(retried) == retries and all(RETRY in line for line in retried)  # each retry only at debug
    assert GIVE_UP in final and error.replace("{url}", url).replace("{host}", url.split("/")[2]) in final, final


def test_alloy_logs_nothing_at_info_while_it_retries_a_closed_port(tmp_path):
    """The real schedule: three tries come within 1.5-3 s of the first, and the info-level log stays empty."""
    log = tmp_path / "app.log"
    log.write_text("line\n")
    with FakeAlloy(_closed_url(), log, log_path=tmp_path / "alloy.log") as alloy:
        wait_for(lambda: len(alloy.pushes) >= 3)
        counters = Counters.parse(web.get(alloy.metrics_url).text, ALLOY)
        assert alloy.log == [] and alloy.dropped_entries == 0  # nothing at info, nothing dropped until the give-up
        assert not (tmp_path / "alloy.log").exists()
    assert counters.requests[NO_ANSWER] >= 3 and counters.retries >= 3  # in step, as the recording's counters
    at = [p.at for p in alloy.pushes]
    assert at[1] - at[0] >= 0.5 and at[2] - at[1] >= 1.0  # dskit backoff: [0.5, 1) s, then [1, 2) s


def test_alloy_drops_a_429_at_once_and_warns_without_retry_on_http_429(tmp_path):
    """From the code (shards.go, DropRateLimitedBatches), not run in the recording: one request, one warn line."""
    server = Answering(429, RATE).start()
    log = tmp_path / "app.log"
    log.write_text("line\n")
    try:
        with FakeAlloy(f"{server.url}/loki/api/v1/push", log, retry_on_http_429=False) as alloy:
            wait_for(lambda: alloy.dropped_entries == 1)
    finally:
        server.stop()
    assert alloy.statuses == [429] and alloy.metrics.get("promtail_batch_retries_total", (alloy.host, "")) == 0
    [line] = alloy.log
    assert 'level=warn msg="dropping batch due to rate limiting applied at ingester"' in line
    assert alloy.metrics.get("promtail_dropped_entries_total", (alloy.host, "rate_limited", "")) == 1


def test_a_wrong_label_looks_like_success_on_alloys_side(tmp_path, loki3):
    """(c): sent_entries and the 204s rise, nothing is logged; only Loki shows the label."""
    log = tmp_path / "app.log"
    log.write_text("line\n")
    with FakeAlloy(f"{loki3.url}/loki/api/v1/push", log, external_labels={"cluster": "wrong"}) as alloy:
        wait_for(lambda: alloy.sent_entries == 1)
        counters = Counters.parse(web.get(alloy.metrics_url).text, ALLOY)
    assert counters.requests == {"204": 1} and not any(counters.dropped.values()) and alloy.log == []
    assert web.get(f"{loki3.url}/loki/api/v1/label/cluster/values").json()["data"] == ["wrong"]


def _attempt_times(monkeypatch, pick: str, tries: int = 10, batch_wait: float = 1.0) -> list[float]:
    """Seconds from the append to each try under the default schedule, every jitter at its low or high end."""
    monkeypatch.setattr(promtail_fake.random, "uniform", lambda low, high: low if pick == "low" else high)
    backoff, at = Backoff(0.5, 300.0, 10), [batch_wait]
    for _ in range(tries - 1):
        at.append(at[-1] + backoff.next_delay())
    return at


# (retries, seconds after the append) as recorded.
RECORDED_READINGS = [
    # README (a): loki_write_batch_retries_total went 3, 5, 6, 7, 8, 9, 10 at about 5, 15, 25, 50, 85, 205, 400 s.
    # Each try that fails counts one retry at once, so the counter reads n from try n until try n+1.
    (3, 5), (5, 15), (6, 25), (7, 50), (8, 85), (9, 205), (10, 400),
    # README (a): the drop came 402 s (Loki stopped) and 418 s (closed port) after the append: right after try 10.
    (10, 402), (10, 418),
]


def test_the_default_schedule_allows_each_recorded_reading(monkeypatch):
    """Each reading lies between try n's earliest moment and try n+1's latest (every jitter low, every jitter high)."""
    earliest, latest = _attempt_times(monkeypatch, "low"), _attempt_times(monkeypatch, "high")
    outside = [(retries, seconds) for retries, seconds in RECORDED_READINGS
               if not (earliest[retries - 1] <= seconds and (retries == 10 or latest[retries] >= seconds))]
    assert not outside, f"readings the schedule cannot give: {outside} (earliest {earliest}, latest {latest})"


def test_the_default_schedule_gives_up_within_the_documented_bounds(monkeypatch):
    """10 tries, 9 waits: 256.5-512 s after the append (1 s batch wait included); types.go documents 511.5 s of waits
    (0.5 s doubling, ten of them), an upper bound of the same schedule; the recording's 402-418 s lie inside."""
    assert _attempt_times(monkeypatch, "low")[-1] == 1.0 + 255.5
    assert _attempt_times(monkeypatch, "high")[-1] == 1.0 + 511.0
    # max_backoff_retries=3 (README (b) 429): the earliest third try is 2.5 s after the append, as recorded.
    assert _attempt_times(monkeypatch, "low", tries=3)[-1] == 2.5


def test_alloy_logs_loki_3_7_6_s_rate_limit_answer_as_recorded(tmp_path, loki3):
    """(b) 429 from Loki 3.7.6: its lower-case text in Alloy's error line (the schedule compressed to 1 ms waits)."""
    loki3.rate_limited = True
    log = tmp_path / "app.log"
    log.write_text("line\n")
    with FakeAlloy(f"{loki3.url}/loki/api/v1/push", log, min_backoff=0.001) as alloy:
        wait_for(lambda: alloy.dropped_entries == 1)
    [line] = alloy.log
    assert ("status=429 tenant=\"\" error=\"server returned HTTP status 429 Too Many Requests (429): ingestion rate limit "
            "exceeded for user fake (limit: ") in line and "reduce log volume or contact your Loki administrator" in line


def test_alloy_s_stream_and_batch_wait_as_recorded(tmp_path, loki3):
    """Smoke test rows: the stream carries cluster (external_labels), filename and job, and Loki 3.7.6 adds
    service_name from job; a line is pushed no sooner than batch_wait (1 s) after its append (1.16-1.28 s seen
    to queryable, polling every 50 ms: not asserted, it is the machine's)."""
    log = tmp_path / "app.log"
    log.touch()
    with FakeAlloy(f"{loki3.url}/loki/api/v1/push", log, external_labels={"cluster": "workstation"},
                   static_labels={"job": "smoke"}) as alloy:
        appended = time.monotonic()
        with log.open("a") as f:
            f.write("one\n")
        wait_for(lambda: alloy.sent_entries == 1)
    assert alloy.pushes[0].at - appended >= 1.0
    [stream] = loki3.streams()
    assert stream["stream"] == {"cluster": "workstation", "filename": str(log), "job": "smoke", "service_name": "smoke"}


def test_alloy_against_a_stopped_loki_reads_on_and_drops_the_line_for_good(tmp_path):
    """(a) Loki stopped: the same give-up as a closed port (status=-1, ingester_error); the file source does not
    block (read_lines counts on) and its position moves past the dropped line. The schedule is compressed (1 ms)."""
    log = tmp_path / "app.log"
    log.write_text("before\n")
    with FakeLoki(version="3.7.6") as loki, FakeAlloy(f"{loki.url}/loki/api/v1/push", log, min_backoff=0.001) as alloy:
        wait_for(lambda: alloy.sent_entries == 1)
        loki.stop()  # stopping twice is harmless: the block's exit stops it again
        with log.open("a") as f:
            f.write("during\n")
        wait_for(lambda: alloy.dropped_entries == 1)
        assert web.get(alloy.ready_url).status_code == 200  # /-/ready and /-/healthy stay 200 meanwhile
        assert web.get(alloy.ready_url.replace("/-/ready", "/-/healthy")).text == "All Alloy components are healthy.\n"
        counters = Counters.parse(web.get(alloy.metrics_url).text, ALLOY)
    [line] = alloy.log
    assert GIVE_UP in line and "status=-1" in line and "connect: connection refused" in line
    assert counters.read_lines == {str(log): 2} and counters.requests[NO_ANSWER] == 10
    assert alloy._offset == log.stat().st_size  # the position is past the dropped line: it is not read again
