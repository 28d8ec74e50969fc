"""Contract tests for the service fakes: FakeLoki, FakePromtail, FakeGrafana, FakeKiali."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import web
from tests.fakes import logql
from tests.fakes.grafana import FakeGrafana
from tests.fakes.kiali import FakeKiali
from tests.fakes.loki import FakeLoki
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
LOGQL_ERRORS = [  # (query, what its error says)
    ('{a "b"}', "parse error at line 1, col 4: syntax error: unexpected STRING, expecting = or =~ or !~ or !="),
    ('topk(1, rate({a="b"}[1m]))', "not supported by FakeLoki"),
    ('{a="b"} | pattern "<_>"', "not supported by FakeLoki"),
]


def parse_error(query: str) -> str:
    try:
        logql.parse(query)
    except logql.LogQLError as e:
        return str(e)
    return "(parsed without an error)"


def test_logql_errors_read_like_loki() -> None:
    said = {query: parse_error(query) for query, _ in LOGQL_ERRORS}
    wrong = {query: said[query] for query, error in LOGQL_ERRORS if error not in said[query]}
    assert not wrong, wrong


def test_logql_accepts_selectors_filters_and_metrics() -> None:
    assert isinstance(logql.parse('{cluster=~".+", job!="x"} |= "a" != "b" |~ "c" !~ "d"'), logql.LogQuery)
    assert isinstance(logql.parse('sum by (cluster) (count_over_time({job="j"}[5m]))'), logql.VectorAggregation)
    assert isinstance(logql.parse("vector(1)+vector(1)"), logql.BinAdd)
    assert isinstance(logql.parse('{a="b"} | json | level="error" or code >= 500 | line_format "{{.msg}}"'), logql.LogQuery)
    assert isinstance(logql.parse('bytes_rate({a="b"} | logfmt | __error__="" [1m])'), logql.RangeAggregation)


PARSED = [  # (line, parser, the labels it leaves)
    # JSON: numbers keep their text, nested keys join with _, arrays are skipped, a stream label is not overwritten
    ('{"level": "error", "code": 500, "req": {"path": "/x"}, "tags": [1], "job": "y"}', "json",
     {"job": "j", "level": "error", "code": "500", "req_path": "/x", "job_extracted": "y"}),
    ("hello level=info", "json", {"job": "j", "__error__": "JSONParserErr",
                                  "__error_details__": "Value looks like object, but can't find closing '}' symbol"}),
    # logfmt: bare keys and empty values are dropped, a JSON line yields nothing and no error
    ('hello level=warn msg="a b" empty= 1x=2', "logfmt", {"job": "j", "level": "warn", "msg": "a b", "_1x": "2"}),
    ('{"level": "error"}', "logfmt", {"job": "j"}),
]


def test_logql_parsers_extract_labels_as_loki() -> None:
    wrong = {}
    for line, parser, labels in PARSED:
        query = logql.parse(f'{{job="j"}} | {parser}')
        assert isinstance(query, logql.LogQuery)
        if (got := query.process(line, {"job": "j"})) != (line, labels):
            wrong[f"{parser}: {line}"] = got
    assert not wrong, wrong


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
# entry sets the window; another stream has its own); a push's 204 and the streams a query_range answers, backward and
# forward with a limit, and its stats; max_query_length's 400 past 30d1h; a timestamp not a string; a label name or
# value Loki refuses, no labels, too many, and each counted under its reason in loki_discarded_samples_total; the
# metric families absent before their first sample, HEAD /ready 405, buildinfo's version; protobuf+snappy pushes and a
# corrupt one; rate, bytes_over_time, sum by and count_over_time (matrix and vector) and their values, the JSON
# pipeline error, the 500 of an uncompilable line-filter regexp; labels, label values (scoped by query=), series
# (all without match[] on 2.9), /config, an unknown path's 404, GET on push 405.
def test_ready_and_not_ready_switch(loki: FakeLoki) -> None:
    r = web.get(loki.url + "/ready")
    assert (r.status_code, r.text) == (200, "ready\n")
    loki.not_ready_for_seconds = 60
    r = web.get(loki.url + "/ready")
    assert (r.status_code, r.text) == (503, "Ingester not ready: waiting for 15s after being ready\n")


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
    loki.visibility_delay_seconds = 2.0  # long beside one local request on a loaded machine; waited for below
    push(loki, [stream({"job": "j"}, (now_ns(), "late"))])
    assert query_range(loki, '{job="j"}').json()["data"]["result"] == []
    assert wait_for(lambda: query_range(loki, '{job="j"}').json()["data"]["result"], timeout=30)
    assert query_range(loki, '{job="j"}').json()["data"]["result"][0]["values"][0][1] == "late"


def test_query_failure_switch(loki: FakeLoki) -> None:
    loki.query_failure = "rpc error: code = Unavailable"
    r = query_range(loki, '{job="j"}')
    assert (r.status_code, r.text) == (500, "rpc error: code = Unavailable\n")


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


def test_health_query_on_293_and_261() -> None:
    params = {"query": "vector(1)+vector(1)", "time": "4000000000", "direction": "backward"}
    with FakeLoki() as new:
        body = web.get(new.url + "/loki/api/v1/query", params=params).json()  # type: ignore[attr-defined]
        assert body["data"]["resultType"] == "vector" and body["data"]["result"][0]["value"][1] == "2"
    with FakeLoki(version="2.6.1") as old:
        r = web.get(old.url + "/loki/api/v1/query", params=params)  # type: ignore[attr-defined]
        assert (r.status_code, r.text) == (400, "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER")


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
    agent = FakePromtail(loki.url + PUSH, log)
    agent.paused = True  # before its reader starts: set after, a read already past the check took the line
    with agent:
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
# Held by tests/test_kiali_contract.py's TABLE instead: a remote inaccessible (accessible false, none of its namespaces,
# its workloads 200 and empty), a remote hidden (no secret loaded), and the home cluster undetected (`Kubernetes`).
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


