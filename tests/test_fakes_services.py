"""Contract tests for the service fakes: FakeLoki, FakePromtail, FakeGrafana, FakeKiali."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import web
from tests.fakes import logql
from tests.fakes.grafana import FakeGrafana
from tests.fakes.kiali import FakeKiali
from tests.fakes.loki import FakeLoki, go_time_string, snappy_decode
from tests.fakes.promtail import FakePromtail

NS = 1_000_000_000
PUSH = "/loki/api/v1/push"


@pytest.fixture
def loki() -> Iterator[FakeLoki]:
    with FakeLoki() as server:
        yield server  # type: ignore[misc]


def push(loki: FakeLoki, streams: list[dict], **kw: object) -> httpx.Response:
    return web.post(loki.url + PUSH, json={"streams": streams}, **kw)  # type: ignore[arg-type]


def now_ns() -> int:
    return time.time_ns()


def stream(labels: dict[str, str], *entries: tuple[int, str]) -> dict:
    return {"stream": labels, "values": [[str(ts), line] for ts, line in entries]}


def query_range(loki: FakeLoki, query: str, **params: object) -> httpx.Response:
    return web.get(loki.url + "/loki/api/v1/query_range", params={"query": query, **params})


# -- logql -----------------------------------------------------------------------------
# The errors the Loki recordings hold (empty-matching selector, unclosed selector, unknown function, filter without
# string, unclosed call, no query, bad matcher regexp) are held there, text for text, through FakeLoki's HTTP API
# (tests/test_loki_contract.py); these are the ones no recording has.
@pytest.mark.parametrize("query, error", [
    ('{a "b"}', "parse error at line 1, col 4: syntax error: unexpected STRING, expecting = or =~ or !~ or !="),
    ('topk(1, rate({a="b"}[1m]))', "not supported by FakeLoki"),
    ('{a="b"} | pattern "<_>"', "not supported by FakeLoki"),
])
def test_logql_errors_read_like_loki(query: str, error: str) -> None:
    with pytest.raises(logql.LogQLError) as exc:
        logql.parse(query)
    assert error in str(exc.value)


def test_logql_accepts_selectors_filters_and_metrics() -> None:
    assert isinstance(logql.parse('{cluster=~".+", job!="x"} |= "a" != "b" |~ "c" !~ "d"'), logql.LogQuery)
    assert isinstance(logql.parse('sum by (cluster) (count_over_time({job="j"}[5m]))'), logql.VectorAggregation)
    assert isinstance(logql.parse("vector(1)+vector(1)"), logql.BinAdd)
    assert isinstance(logql.parse('{a="b"} | json | level="error" or code >= 500 | line_format "{{.msg}}"'), logql.LogQuery)
    assert isinstance(logql.parse('bytes_rate({a="b"} | logfmt | __error__="" [1m])'), logql.RangeAggregation)


@pytest.mark.parametrize("line, parser, labels", [
    # JSON: numbers keep their text, nested keys join with _, arrays are skipped, a stream label is not overwritten
    ('{"level": "error", "code": 500, "req": {"path": "/x"}, "tags": [1], "job": "y"}', "json",
     {"job": "j", "level": "error", "code": "500", "req_path": "/x", "job_extracted": "y"}),
    ("hello level=info", "json", {"job": "j", "__error__": "JSONParserErr",
                                  "__error_details__": "Value looks like object, but can't find closing '}' symbol"}),
    # logfmt: bare keys and empty values are dropped, a JSON line yields nothing and no error
    ('hello level=warn msg="a b" empty= 1x=2', "logfmt", {"job": "j", "level": "warn", "msg": "a b", "_1x": "2"}),
    ('{"level": "error"}', "logfmt", {"job": "j"}),
])
def test_logql_parsers_extract_labels_as_loki(line: str, parser: str, labels: dict[str, str]) -> None:
    query = logql.parse(f'{{job="j"}} | {parser}')
    assert isinstance(query, logql.LogQuery)
    assert query.process(line, {"job": "j"}) == (line, labels)


def test_logql_label_filters_and_line_format() -> None:
    query = logql.parse('{job="j"} | logfmt | level="warn" or code > 400 | line_format "{{.level}}:{{ .code }}"')
    assert isinstance(query, logql.LogQuery)
    assert query.process("level=warn code=200", {"job": "j"})[0] == "warn:200"  # type: ignore[index]
    assert query.process("level=info code=503", {"job": "j"})[0] == "info:503"  # type: ignore[index]
    assert query.process("level=info code=200", {"job": "j"}) is None
    assert query.process("level=info", {"job": "j"}) is None  # a numeric filter on a missing label drops the line


# -- FakeLoki: ready, push ---------------------------------------------------------------
# Held to the recordings instead (tests/test_loki_contract.py, text for text): the query parameters' 400s (limit,
# direction, start, end before start, the 5000 entries limit), unparsable push JSON and a missing Content-Type, the
# empty-compatible selector, too-old entries (counted, the fresh ones kept), too-far-behind entries (the stream's newest
# entry sets the window; another stream has its own).
def test_ready_and_not_ready_switch(loki: FakeLoki) -> None:
    r = web.get(loki.url + "/ready")
    assert (r.status_code, r.text) == (200, "ready\n")
    loki.not_ready_for_seconds = 60
    r = web.get(loki.url + "/ready")
    assert (r.status_code, r.text) == (503, "Ingester not ready: waiting for 15s after being ready\n")


def test_push_then_query_range_shape(loki: FakeLoki) -> None:
    t = now_ns()
    r = push(loki, [stream({"job": "j", "cluster": "workstation"}, (t - 2 * NS, "one"), (t - NS, "two"))])
    assert r.status_code == 204 and r.content == b""
    r = query_range(loki, '{cluster="workstation"}', start=str(t - 60 * NS), end=str(t + NS))
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success"
    assert body["data"]["resultType"] == "streams"
    assert body["data"]["result"] == [{"stream": {"cluster": "workstation", "job": "j"},
                                       "values": [[str(t - NS), "two"], [str(t - 2 * NS), "one"]]}]
    assert "summary" in body["data"]["stats"]
    forward = query_range(loki, '{job="j"}', direction="forward", limit="1", start=str(t - 60 * NS))
    assert forward.json()["data"]["result"][0]["values"] == [[str(t - 2 * NS), "one"]]


def test_query_time_window_and_formats(loki: FakeLoki) -> None:
    t = (now_ns() // NS) * NS - 10 * NS
    push(loki, [stream({"job": "j"}, (t, "at-t"))])
    assert query_range(loki, '{job="j"}', start=str(t + 1), end=str(t + NS)).json()["data"]["result"] == []
    assert query_range(loki, '{job="j"}', start=str(t - NS), end=str(t)).json()["data"]["result"] == []  # end exclusive
    for start in (str(t // NS), f"{t / NS - 1:.3f}", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t // NS))):
        got = query_range(loki, '{job="j"}', start=start, end=str(t + NS)).json()["data"]["result"]
        assert got and got[0]["values"] == [[str(t), "at-t"]], start


def test_line_filters_and_regex_matchers(loki: FakeLoki) -> None:
    t = now_ns()
    push(loki, [stream({"app": "canary-1"}, (t - 3 * NS, "hello world"), (t - 2 * NS, "goodbye")),
                stream({"app": "other"}, (t - NS, "hello"))])
    values = lambda q: [v[1] for s in query_range(loki, q).json()["data"]["result"] for v in s["values"]]  # noqa: E731
    assert values('{app=~"canary-.*"} |= "hello"') == ["hello world"]
    assert values('{app=~"canary"}') == []  # anchored regex
    assert values('{app!~"canary-.+", app=~".+"} != "x"') == ["hello"]
    assert sorted(values('{app=~".+"} |~ "o+d"')) == ["goodbye"]


def test_query_range_over_max_query_length_is_refused(loki: FakeLoki) -> None:
    t = now_ns()
    r = query_range(loki, '{a="b"}', start=str(t - (30 * 24 + 1) * 3600 * NS - NS), end=str(t))
    assert (r.status_code, r.text) == (
        400, "the query time range exceeds the limit (query length: 721h0m1s, limit: 30d1h)")
    assert query_range(loki, '{a="b"}', start=str(t - 30 * 24 * 3600 * NS), end=str(t)).status_code == 200


def test_timestamps_must_be_strings(loki: FakeLoki) -> None:
    r = web.post(loki.url + PUSH, json={"streams": [{"stream": {"job": "j"}, "values": [[now_ns(), "x"]]}]})
    assert r.status_code == 400
    assert r.text.startswith("loghttp.PushRequest.Streams: []loghttp.LogProtoStream: unmarshalerDecoder: "
                             "Value looks like Number/Boolean/None, but can't find its end: ',' or '}' symbol, "
                             "error found in #10 byte of")
    assert loki.streams() == []


def test_invalid_and_missing_labels(loki: FakeLoki) -> None:
    r = push(loki, [stream({"my-label": "x"}, (now_ns(), "l"))])
    assert (r.status_code, r.text) == (
        400, "couldn't parse labels: 1:4: parse error: unexpected character inside braces: '-'\n")
    assert loki.discarded == {} and loki.lines_received is None  # refused before the distributor counts anything
    r = push(loki, [stream({}, (now_ns(), "l"), (now_ns(), "m"))])
    assert (r.status_code, r.text) == (400, "error at least one label pair is required per stream\n")
    # ValidateLabels counts its reason once per stream, the distributor invalid_labels once per entry
    assert loki.discarded == {"missing_labels": 1, "invalid_labels": 2}
    push(loki, [stream({f"l{i}": "v" for i in range(31)}, (now_ns(), "l"))])
    push(loki, [stream({"job": "v" * 2049}, (now_ns(), "l"))])
    assert loki.discarded == {"missing_labels": 1, "invalid_labels": 4, "max_label_names_per_series": 1,
                              "label_value_too_long": 1}


def test_rate_limit_switch(loki: FakeLoki) -> None:
    loki.rate_limited = True
    r = push(loki, [stream({"job": "j"}, (now_ns(), "abc"))])
    assert r.status_code == 429
    assert r.text == ("Ingestion rate limit exceeded for user fake (limit: 4194304 bytes/sec) while attempting to "
                      "ingest '1' lines totaling '3' bytes, reduce log volume or contact your Loki administrator "
                      "to see if the limit can be increased\n")
    assert loki.discarded == {"rate_limited": 1} and loki.streams() == []


def test_drop_and_delay_switches(loki: FakeLoki) -> None:
    loki.drop_pushes = True
    assert push(loki, [stream({"job": "j"}, (now_ns(), "lost"))]).status_code == 204
    assert loki.streams() == []
    loki.drop_pushes = False
    loki.visibility_delay_seconds = 0.3
    push(loki, [stream({"job": "j"}, (now_ns(), "late"))])
    assert query_range(loki, '{job="j"}').json()["data"]["result"] == []
    time.sleep(0.35)
    assert query_range(loki, '{job="j"}').json()["data"]["result"][0]["values"][0][1] == "late"


def test_query_failure_switch(loki: FakeLoki) -> None:
    loki.query_failure = "rpc error: code = Unavailable"
    r = query_range(loki, '{job="j"}')
    assert (r.status_code, r.text) == (500, "rpc error: code = Unavailable\n")


def test_metric_functions_and_pipeline_errors(loki: FakeLoki) -> None:
    t = (now_ns() // (60 * NS)) * 60 * NS  # an aligned step: both lines fall in (t - 1m, t]
    push(loki, [stream({"job": "j"}, (t - 30 * NS, "level=info"), (t - 20 * NS, '{"level":"error"}'))])
    instant = lambda q: web.get(loki.url + "/loki/api/v1/query", params={"query": q, "time": str(t)})  # noqa: E731
    value = lambda q: [r["value"][1] for r in instant(q).json()["data"]["result"]]  # noqa: E731
    assert value('rate({job="j"}[1m])') == ["0.03333333333333333"]  # 2 lines / 60 s
    assert value('bytes_over_time({job="j"}[1m])') == ["27"]  # 10 + 17 bytes
    assert value('sum by (level) (count_over_time({job="j"} | json | __error__="" [1m]))') == ["1"]
    r = instant('count_over_time({job="j"} | json [1m])')  # the logfmt line fails to parse as JSON
    assert r.status_code == 400 and r.text.startswith(
        "pipeline error: 'JSONParserErr' for series: '{__error__=\"JSONParserErr\", __error_details__=\"Value looks like "
        "object, but can't find closing '}' symbol\", job=\"j\"}'.\nUse a label filter to intentionally skip this error.")
    r = query_range(loki, '{job="j"} |~ "("')  # the querier compiles line-filter regexps: 500, as an rpc error
    assert (r.status_code, r.text) == (500, "rpc error: code = Unknown desc = parse error : stage '|~ \"(\"' : "
                                            "error parsing regexp: missing closing ): `(`\n")


def test_instant_log_query_looks_back_30_seconds(loki: FakeLoki) -> None:
    t = now_ns() - 60 * NS
    push(loki, [stream({"job": "j"}, (t - 31 * NS, "too early"), (t - 29 * NS, "inside"), (t, "at time"))])
    r = web.get(loki.url + "/loki/api/v1/query", params={"query": '{job="j"}', "time": str(t)})
    assert [v[1] for s in r.json()["data"]["result"] for v in s["values"]] == ["inside"]  # [time - 30 s, time)


def test_labels_come_from_what_the_ingester_holds(loki: FakeLoki) -> None:
    push(loki, [stream({"job": "old", "cluster": "c-old"}, (now_ns() - 2 * 3600 * NS, "x"))])
    values = lambda **p: web.get(loki.url + "/loki/api/v1/label/cluster/values", params=p).json()  # noqa: E731
    assert values() == {"status": "success", "data": ["c-old"]}  # outside the default hour, still held
    assert values(start=str(now_ns() - 60 * NS)) == {"status": "success", "data": ["c-old"]}
    assert values(query='{job="none"}') == {"status": "success"}  # `data` is omitempty
    assert web.post(loki.url + "/loki/api/v1/labels").json()["data"] == ["cluster", "job"]


def test_metrics_families_appear_with_their_first_sample_and_head_is_refused(loki: FakeLoki) -> None:
    assert "loki_distributor_lines_received_total" not in web.get(loki.url + "/metrics").text
    assert "loki_discarded_samples_total" not in web.get(loki.url + "/metrics").text
    assert httpx.head(loki.url + "/ready").status_code == 405
    assert web.get(loki.url + "/loki/api/v1/status/buildinfo").json()["version"] == "2.9.3"


def test_protobuf_push(loki: FakeLoki) -> None:
    r = web.post(loki.url + PUSH, content=b"\xff\xff\xff", headers={"Content-Type": "application/x-protobuf"})
    assert (r.status_code, r.text) == (400, "snappy: corrupt input\n")
    t = now_ns()

    def field(num: int, payload: bytes) -> bytes:
        return bytes([num << 3 | 2, len(payload)]) + payload

    def varint_field(num: int, value: int) -> bytes:
        out = bytearray([num << 3])
        while True:
            out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
            value >>= 7
            if not value:
                return bytes(out)

    ts = varint_field(1, t // NS) + varint_field(2, t % NS)
    entry = field(1, ts) + field(2, b"proto line")
    req = field(1, field(1, b'{job="p"}') + field(2, entry))
    body = bytes([len(req)]) + bytes([(len(req) - 1) << 2]) + req  # snappy: length varint + one literal
    assert snappy_decode(body) == req
    r = web.post(loki.url + PUSH, content=body, headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 204
    assert loki.streams() == [{"stream": {"job": "p"}, "values": [[str(t), "proto line"]]}]


def test_metric_queries(loki: FakeLoki) -> None:
    t = (now_ns() // NS) * NS
    push(loki, [stream({"job": "j", "cluster": "oke"}, (t - 3 * NS, "a"), (t - 2 * NS, "b")),
                stream({"job": "j", "cluster": "workstation"}, (t - 2 * NS, "c"))])
    r = query_range(loki, 'sum by (cluster) (count_over_time({job="j"}[1m]))', start=str(t - NS), end=str(t), step="1")
    data = r.json()["data"]
    assert data["resultType"] == "matrix"
    assert {s["metric"]["cluster"]: s["values"][-1][1] for s in data["result"]} == {"oke": "2", "workstation": "1"}
    inst = web.get(loki.url + "/loki/api/v1/query", params={"query": 'count_over_time({job="j"}[1m])', "time": str(t)})
    assert inst.json()["data"]["resultType"] == "vector" and len(inst.json()["data"]["result"]) == 2


def test_health_query_on_293_and_261() -> None:
    params = {"query": "vector(1)+vector(1)", "time": "4000000000", "direction": "backward"}
    with FakeLoki() as new:
        body = web.get(new.url + "/loki/api/v1/query", params=params).json()  # type: ignore[attr-defined]
        assert body["data"]["resultType"] == "vector" and body["data"]["result"][0]["value"][1] == "2"
    with FakeLoki(version="2.6.1") as old:
        r = web.get(old.url + "/loki/api/v1/query", params=params)  # type: ignore[attr-defined]
        assert (r.status_code, r.text) == (400, "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER")


def test_labels_values_series_and_misc(loki: FakeLoki) -> None:
    t = now_ns()
    push(loki, [stream({"job": "j", "cluster": "workstation"}, (t - NS, "x")), stream({"job": "k"}, (t - NS, "y"))])
    assert web.get(loki.url + "/loki/api/v1/labels").json() == {"status": "success", "data": ["cluster", "job"]}
    values = web.get(loki.url + "/loki/api/v1/label/cluster/values").json()
    assert values == {"status": "success", "data": ["workstation"]}
    scoped = web.get(loki.url + "/loki/api/v1/label/job/values", params={"query": '{cluster="workstation"}'})
    assert scoped.json()["data"] == ["j"]
    series = web.get(loki.url + "/loki/api/v1/series", params={"match[]": '{job="k"}'}).json()
    assert series == {"status": "success", "data": [{"job": "k"}]}
    assert len(web.get(loki.url + "/loki/api/v1/series").json()["data"]) == 2  # 2.9: no match[] = all series
    assert web.get(loki.url + "/loki/api/v1/series", params={"match[]": '{job=~".*"}'}).status_code == 400
    assert "reject_old_samples_max_age: 1w" in web.get(loki.url + "/config").text
    r = web.get(loki.url + "/nope")
    assert (r.status_code, r.text) == (404, "404 page not found\n")
    assert web.get(loki.url + PUSH).status_code == 405


# -- FakePromtail ------------------------------------------------------------------------
def wait_for(predicate, timeout: float = 3.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_promtail_ships_the_file_from_offset_0_with_its_real_labels(loki: FakeLoki, tmp_path: Path) -> None:
    log = tmp_path / "canary.log"
    log.write_text("before start\n")  # a fresh positions file: what the file holds is shipped too
    with FakePromtail(loki.url + PUSH, log, external_labels={"cluster": "workstation"}) as agent:
        with log.open("a") as f:
            f.write("line 1\nline 2\n")
        assert wait_for(lambda: agent.sent_entries == 3)
    streams = loki.streams()
    # external_labels + the scrape config's static labels + filename; nothing else
    assert streams[0]["stream"] == {"cluster": "workstation", "job": "conformance-canary", "filename": str(log)}
    assert [v[1] for v in streams[0]["values"]] == ["before start", "line 1", "line 2"]
    assert set(agent.statuses) == {204}
    pushes = [r for r in loki.requests if r.path == PUSH]
    assert {(r.headers["Content-Type"], r.headers["User-Agent"]) for r in pushes} == {
        ("application/x-protobuf", "promtail/2.9.3")}
    assert "Content-Encoding" not in pushes[0].headers and pushes[0].body[:1] != b"{"  # snappy-framed protobuf


def test_promtail_append_to_push_is_batchwait(loki: FakeLoki, tmp_path: Path) -> None:
    """The real agent took 1.07-1.30 s from append to push (file read 0.05-0.2 s, then batchwait 1 s)."""
    log = tmp_path / "canary.log"
    log.touch()
    with FakePromtail(loki.url + PUSH, log) as agent:
        time.sleep(0.3)
        appended = time.monotonic()
        with log.open("a") as f:
            f.write("timed\n")
        assert wait_for(lambda: agent.pushes, timeout=5)
        assert 1.0 <= agent.pushes[0].at - appended <= 1.5  # 1.0-1.25 s by construction, 0.25 s for a loaded machine


def test_promtail_restart_resumes_at_its_offset(loki: FakeLoki, tmp_path: Path) -> None:
    log = tmp_path / "canary.log"
    log.write_text("one\n")
    agent = FakePromtail(loki.url + PUSH, log)
    with agent:
        assert wait_for(lambda: agent.sent_entries == 1)
    log.open("a").write("two\n")
    with agent:
        assert wait_for(lambda: agent.sent_entries == 2)
    assert [v[1] for v in loki.streams()[0]["values"]] == ["one", "two"]


def test_promtail_paused_and_missing_external_labels(loki: FakeLoki, tmp_path: Path) -> None:
    log = tmp_path / "canary.log"
    with FakePromtail(loki.url + PUSH, log) as agent:
        agent.paused = True
        log.write_text("ignored while paused\n")
        time.sleep(0.3)
        assert agent.read_bytes == 0 and loki.streams() == []
    assert all("cluster" not in s["stream"] for s in loki.streams())


def test_promtail_backoff_schedule_is_dskit_defaults() -> None:
    """0.5 s doubling to 5 min, each delay jittered within [d, 2d): 10 attempts, so 9 waits, 255.5-511 s in all."""
    from tests.fakes.promtail import Backoff
    backoff, delays = Backoff(0.5, 300.0, 10), []
    while True:
        delay = backoff.next_delay()
        if not backoff.ongoing:
            break
        delays.append(delay)
    assert len(delays) == 9
    for i, d in enumerate(delays):
        assert 0.5 * 2**i <= d < min(2 ** (i + 1) * 0.5, 300.0) or d == 300.0
    assert 255.5 <= sum(delays) < 511


class FlakyLoki(FakeLoki):
    """Answers the first `failures` pushes with 503, then as FakeLoki."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def _push(self, request):  # type: ignore[no-untyped-def]
        if self.failures > 0:
            self.failures -= 1
            return self._text_error(503, "Ingester not ready")
        return super()._push(request)


def test_promtail_retries_5xx_with_backoff_then_delivers(tmp_path: Path) -> None:
    with FlakyLoki(failures=2) as loki, FakePromtail(loki.url + PUSH, tmp_path / "x.log") as agent:
        agent.emit("retried", namespace="canary", pod="p", container="c", app="canary")
        assert wait_for(lambda: agent.sent_entries == 1, timeout=8)
        at = [p.at for p in agent.pushes]
        assert agent.statuses == [503, 503, 204]
        assert 0.5 <= at[1] - at[0] < 1.0 + 0.2 and 1.0 <= at[2] - at[1] < 2.0 + 0.2  # [0.5, 1) then [1, 2) s
        metrics = web.get(agent.metrics_url).text
        host = loki.url.removeprefix("http://")
    assert f'promtail_batch_retries_total{{host="{host}",tenant=""}} 2' in metrics
    assert f'promtail_sent_entries_total{{host="{host}"}} 1' in metrics
    assert f'promtail_request_duration_seconds_count{{host="{host}",status_code="503"}} 2' in metrics
    assert f'promtail_dropped_entries_total{{host="{host}",reason="ingester_error",tenant=""}} 0' in metrics


def test_promtail_connection_errors_are_status_minus_1_and_dropped_after_the_retries(tmp_path: Path) -> None:
    import socket
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    agent = FakePromtail(f"http://127.0.0.1:{port}{PUSH}", tmp_path / "x.log", max_retries=2, min_backoff=0.01)
    with agent:
        agent.emit("lost", namespace="canary", pod="p", container="c", app="canary")
        assert wait_for(lambda: agent.dropped_entries == 1)
        metrics = web.get(agent.metrics_url).text
    assert agent.statuses == [-1, -1]
    assert f'promtail_request_duration_seconds_count{{host="127.0.0.1:{port}",status_code="-1"}} 2' in metrics
    assert f'promtail_dropped_entries_total{{host="127.0.0.1:{port}",reason="ingester_error",tenant=""}} 1' in metrics


def test_promtail_drops_400_at_once_and_429_after_the_retries(loki: FakeLoki, tmp_path: Path) -> None:
    agent = FakePromtail(loki.url + PUSH, tmp_path / "x.log", max_retries=2, min_backoff=0.01)
    loki.rate_limited = True
    agent.emit("throttled", namespace="canary", pod="p", container="c", app="canary")
    assert agent.statuses == [429, 429]
    assert agent.metrics.get("promtail_dropped_entries_total", (agent.host, "rate_limited", "")) == 1
    loki.rate_limited = False
    old = now_ns() - 200 * 3600 * NS
    agent._ship([((("job", "j"),), old, "stale")])  # too old: Loki answers 400, never retried
    assert agent.statuses[2:] == [400]
    assert agent.metrics.get("promtail_dropped_entries_total", (agent.host, "ingester_error", "")) == 1
    assert agent.dropped_entries == 2


def test_promtail_emit_adds_pod_labels(loki: FakeLoki, tmp_path: Path) -> None:
    with FakePromtail(loki.url + PUSH, tmp_path / "x.log", external_labels={"cluster": "workstation"}) as agent:
        agent.emit("hello", namespace="canary", pod="canary-abc", container="main", app="canary")
        assert wait_for(lambda: agent.sent_entries == 1)
    labels = loki.streams()[0]["stream"]
    assert {k: labels[k] for k in ("cluster", "namespace", "pod", "container", "app", "job")} == {
        "cluster": "workstation", "namespace": "canary", "pod": "canary-abc", "container": "main", "app": "canary",
        "job": "canary/canary"}


# -- FakeGrafana -------------------------------------------------------------------------
DASHBOARDS = [
    {"uid": "istio-mesh", "title": "Istio Mesh Dashboard", "folder": "Istio", "tags": ["istio"],
     "panels": [{"title": "Requests", "targets": [{"expr": "sum(istio_requests_total)",
                                                    "datasource": {"type": "prometheus", "uid": "prometheus"}}]}]},
    {"uid": "logs", "title": "Canary Logs", "provisioned": False, "panels": []},
]


@pytest.fixture
def grafana(loki: FakeLoki, tmp_path: Path) -> Iterator[FakeGrafana]:
    datasources = [
        {"uid": "prometheus", "name": "Prometheus", "type": "prometheus", "url": "http://prometheus:9090",
         "isDefault": True},
        {"uid": "loki", "name": "Loki", "type": "loki", "url": "http://loki-stack:3100", "backend_url": loki.url},
    ]
    with FakeGrafana("admin", "s3cret", log_path=tmp_path / "grafana.log", dashboards=DASHBOARDS,
                     datasources=datasources) as server:
        yield server  # type: ignore[misc]


AUTH = ("admin", "s3cret")


def test_grafana_auth(grafana: FakeGrafana) -> None:
    health = web.get(grafana.url + "/api/health")
    assert health.status_code == 200 and health.json()["database"] == "ok" and "version" in health.json()
    r = web.get(grafana.url + "/api/search")
    assert (r.status_code, r.json()) == (401, {"message": "Unauthorized", "messageId": "auth.unauthorized",
                                               "statusCode": 401, "traceID": ""})
    r = web.get(grafana.url + "/api/search", auth=("admin", "wrong"))
    assert r.status_code == 401 and r.json()["message"] == "Invalid username or password"


def test_grafana_search_and_dashboard(grafana: FakeGrafana) -> None:
    hits = web.get(grafana.url + "/api/search", params={"type": "dash-db"}, auth=AUTH).json()
    mesh = next(h for h in hits if h["uid"] == "istio-mesh")
    assert mesh["folderTitle"] == "Istio" and mesh["type"] == "dash-db" and mesh["url"] == "/d/istio-mesh/istio-mesh-dashboard"
    assert {"uri", "tags", "isStarred", "folderUid", "folderId"} <= set(mesh)
    assert "folderTitle" not in next(h for h in hits if h["uid"] == "logs")  # General: omitted
    folders = web.get(grafana.url + "/api/search", params={"type": "dash-folder"}, auth=AUTH).json()
    assert [f["title"] for f in folders] == ["Istio"]
    only = web.get(grafana.url + "/api/search", params={"query": "mesh", "folderUIDs": mesh["folderUid"]}, auth=AUTH)
    assert [h["uid"] for h in only.json()] == ["istio-mesh"]
    full = web.get(grafana.url + "/api/dashboards/uid/istio-mesh", auth=AUTH).json()
    assert full["meta"]["provisioned"] is True and full["meta"]["provisionedExternalId"] == "istio-mesh.json"
    assert full["meta"]["folderTitle"] == "Istio" and full["dashboard"]["panels"][0]["targets"][0]["refId"] == "A"
    r = web.get(grafana.url + "/api/dashboards/uid/nope", auth=AUTH)
    assert (r.status_code, r.json()) == (404, {"message": "Dashboard not found"})
    assert web.get(grafana.url + "/api/folders", auth=AUTH).json()[0]["title"] == "Istio"


def test_grafana_datasources_and_health(grafana: FakeGrafana, loki: FakeLoki) -> None:
    listed = web.get(grafana.url + "/api/datasources", auth=AUTH).json()
    assert [d["isDefault"] for d in listed] == [False, True]
    assert {"id", "uid", "orgId", "name", "type", "access", "url", "isDefault", "jsonData", "readOnly"} <= set(listed[0])
    ok = web.get(grafana.url + "/api/datasources/uid/loki/health", auth=AUTH)
    assert (ok.status_code, ok.json()) == (200, {"status": "OK", "message": "Successfully queried the Loki API."})
    prom = web.get(grafana.url + "/api/datasources/uid/prometheus/health", auth=AUTH)
    assert prom.status_code == 400 and prom.json()["status"] == "ERROR"
    assert "no such host" in prom.json()["message"]  # never leaves loopback
    grafana.health_errors["loki"] = "forced"
    assert web.get(grafana.url + "/api/datasources/uid/loki/health", auth=AUTH).json() == {
        "status": "ERROR", "message": "forced"}


def test_grafana_loki_health_against_old_loki(tmp_path: Path) -> None:
    with FakeLoki(version="2.6.1") as old:
        ds = [{"uid": "loki", "name": "Loki", "type": "loki", "url": "http://loki-stack:3100",
               "backend_url": old.url}]  # type: ignore[attr-defined]
        with FakeGrafana(datasources=ds, log_path=tmp_path / "g.log") as grafana:
            r = web.get(grafana.url + "/api/datasources/uid/loki/health", auth=("admin", "admin"))  # type: ignore[attr-defined]
    assert r.status_code == 400
    assert r.json() == {"status": "ERROR", "message": "There was an error returned querying the Loki API.: "
                                                      "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER"}
    log = (tmp_path / "g.log").read_text()
    assert 'query=vector(1)+vector(1)' in log
    assert 'error="parse error at line 1, col 1: syntax error: unexpected IDENTIFIER"' in log


def test_grafana_ds_query_forwards_to_loki(grafana: FakeGrafana, loki: FakeLoki) -> None:
    push(loki, [stream({"cluster": "workstation", "job": "j"}, (now_ns() - NS, "hello"))])
    body = {"queries": [{"refId": "A", "datasource": {"type": "loki", "uid": "loki"}, "expr": '{cluster="workstation"}'}],
            "from": "now-5m", "to": "now"}
    r = web.post(grafana.url + "/api/ds/query", json=body, auth=AUTH)
    frame = r.json()["results"]["A"]["frames"][0]
    assert r.status_code == 200 and frame["data"]["values"][2] == ["hello"]
    body["queries"][0]["expr"] = '{cluster=~".*"}'
    r = web.post(grafana.url + "/api/ds/query", json=body, auth=AUTH)
    assert r.status_code == 400 and "empty-compatible value" in r.json()["results"]["A"]["error"]


def test_grafana_provisioning_faults(tmp_path: Path) -> None:
    dashboards = [{"uid": "a", "title": ""}, {"uid": "b", "title": "B"}, {"uid": "b", "title": "B copy"},
                  {"uid": "c", "title": "Wrapped", "wrapped": True}]
    with FakeGrafana(log_path=tmp_path / "g.log", dashboards=dashboards) as grafana:
        hits = web.get(grafana.url + "/api/search", auth=("admin", "admin")).json()  # type: ignore[attr-defined]
    assert [h["title"] for h in hits] == ["B"]
    log = (tmp_path / "g.log").read_text().splitlines()
    errors = [line for line in log if 'msg="failed to load dashboard from "' in line]
    assert len(errors) == 2 and all(line.startswith("logger=provisioning.dashboard type=file name=default t=")
                                    for line in errors)
    assert all('level=error' in line and 'error="Dashboard title cannot be empty"' in line for line in errors)
    assert any('msg="the same UID is used more than once" uid=b times=2' in line for line in log)


def test_grafana_two_default_datasources_crash(tmp_path: Path) -> None:
    ds = [{"uid": "p", "type": "prometheus", "url": "http://p", "isDefault": True},
          {"uid": "l", "type": "loki", "url": "http://l", "isDefault": True}]
    grafana = FakeGrafana(datasources=ds, log_path=tmp_path / "g.log").start()
    try:
        assert grafana.crashed
        with pytest.raises(httpx.ConnectError):
            web.get(grafana.url + "/api/health")
        assert "Only one datasource per organization can be marked as default" in (tmp_path / "g.log").read_text()
    finally:
        grafana.stop()


# -- FakeKiali ---------------------------------------------------------------------------
CLUSTERS = {
    "oke": {"home": True, "namespaces": {
        "istio-system": {"controlPlane": True, "workloads": [{"name": "istiod", "istioSidecar": False}]},
        "canary": {"labels": {"istio-injection": "enabled"}, "workloads": [{"name": "canary"}]}}},
    "workstation": {"secretName": "kiali-remote-cluster-secret-workstation", "apiEndpoint": "https://172.18.0.3:6443",
                    "namespaces": {"canary": {"labels": {"istio-injection": "enabled"},
                                              "workloads": [{"name": "canary"}]}}},
}


@pytest.fixture
def kiali() -> Iterator[FakeKiali]:
    with FakeKiali(CLUSTERS) as server:
        yield server  # type: ignore[misc]


def test_kiali_config_namespaces_workloads(kiali: FakeKiali) -> None:
    cfg = web.get(kiali.url + "/kiali/api/config").json()
    assert cfg["authStrategy"] == "anonymous" and cfg["controlPlanes"] == {"oke": "istio-system"}
    remote = cfg["clusters"]["workstation"]
    assert set(remote) == {"accessible", "apiEndpoint", "isKialiHome", "kialiInstances", "name", "secretName"}
    assert remote["accessible"] and not remote["isKialiHome"] and cfg["clusters"]["oke"]["isKialiHome"]
    namespaces = web.get(kiali.url + "/kiali/api/namespaces").json()
    assert {(n["cluster"], n["name"]) for n in namespaces} == {("oke", "istio-system"), ("oke", "canary"),
                                                               ("workstation", "canary")}
    canary = next(n for n in namespaces if n["cluster"] == "workstation")
    assert canary["revision"] == "default" and set(canary) >= {"isAmbient", "isControlPlane", "labels", "annotations"}
    wl = web.get(kiali.url + "/kiali/api/clusters/workloads", params={"clusterName": "workstation"}).json()
    assert wl["cluster"] == "workstation" and [w["name"] for w in wl["workloads"]] == ["canary"]
    assert wl["validations"] == {}
    graph = web.get(kiali.url + "/kiali/api/mesh/graph").json()
    assert {n["data"]["cluster"] for n in graph["elements"]["nodes"]} == {"_external_", "oke", "workstation"}
    assert web.get(kiali.url + "/kiali/api/status").json()["status"]["Kiali state"] == "running"
    assert web.get(kiali.url + "/api/config").status_code == 404  # only under web_root


def test_kiali_faults(kiali: FakeKiali) -> None:
    kiali.inaccessible.add("workstation")
    cfg = web.get(kiali.url + "/kiali/api/config").json()
    assert cfg["clusters"]["workstation"]["accessible"] is False
    assert all(n["cluster"] == "oke" for n in web.get(kiali.url + "/kiali/api/namespaces").json())
    wl = web.get(kiali.url + "/kiali/api/clusters/workloads", params={"clusterName": "workstation"})
    assert wl.status_code == 200 and wl.json()["workloads"] == []  # Kiali 2.29 does not fail here
    kiali.hidden.add("workstation")
    assert "workstation" not in web.get(kiali.url + "/kiali/api/config").json()["clusters"]
    kiali.hidden.clear()
    kiali.inaccessible.clear()
    kiali.home_name = "Kubernetes"  # Kiali's fallback home name (config.DefaultClusterID, v2.29.0)
    cfg = web.get(kiali.url + "/kiali/api/config").json()
    assert set(cfg["clusters"]) == {"Kubernetes", "workstation"} and cfg["clusters"]["Kubernetes"]["isKialiHome"]
    assert json.dumps(cfg)  # serialisable
