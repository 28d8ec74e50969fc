"""The Loki, Grafana and Kiali clients against the contract-faithful fakes: shapes in, errors with bodies out."""

from __future__ import annotations

import time

import pytest

from conformance.clients.grafana import GrafanaClient
from conformance.clients.kiali import KialiClient
from conformance.clients.loki import LokiClient, Stream
from conformance.core.http import APIError, HTTPService, RetryPolicy
from tests.fakes.grafana import FakeGrafana
from tests.fakes.kiali import FakeKiali
from tests.fakes.loki import FakeLoki
from tests.proving_stack import declared_dashboards, kiali_spec

QUICK = RetryPolicy(attempts=2, delay=0.01, budget=1)


@pytest.fixture
def loki():
    with FakeLoki() as fake:
        yield fake, LokiClient(HTTPService("oke Loki", fake.url, retry=QUICK))


def test_loki_push_then_query_labels_and_series(loki):
    fake, client = loki
    now = time.time_ns()
    client.push([Stream({"cluster": "workstation", "job": "canary"}, [(now, "line one"), (now + 1, "line two")])])
    streams = client.streams('{cluster="workstation"} |= "two"', start=now / 1e9 - 60, end=now / 1e9 + 60)
    assert [v[1] for s in streams for v in s["values"]] == ["line two"]
    assert client.label_values("cluster", start=now / 1e9 - 60, end=now / 1e9 + 60) == ["workstation"]
    assert "cluster" in client.labels(start=now / 1e9 - 60, end=now / 1e9 + 60)
    assert client.series(['{job="canary"}'], start=now / 1e9 - 60, end=now / 1e9 + 60)[0]["cluster"] == "workstation"
    assert "loki_distributor_lines_received_total" in client.metrics()


def test_loki_ready_reports_the_warm_up_body(loki):
    fake, client = loki
    fake.not_ready_for_seconds = 60
    fake.reset_ready_clock()
    ready, body = client.ready()
    assert not ready and body == "Ingester not ready: waiting for 15s after being ready"


def test_loki_rejects_an_entry_too_far_behind_with_its_own_words(loki):
    fake, client = loki
    now = time.time_ns()
    client.push([Stream({"cluster": "oke"}, [(now, "new")])])
    with pytest.raises(APIError) as e:
        client.push([Stream({"cluster": "oke"}, [(now - 2 * 3600 * 10**9, "two hours older")])])
    assert e.value.status == 400
    assert "entry too far behind" in e.value.body


def test_loki_selector_that_matches_empty_is_refused(loki):
    _, client = loki
    with pytest.raises(APIError) as e:
        client.streams('{cluster=~".*"}')
    assert e.value.status == 400 and "at least one" in e.value.body


def test_loki_3x_stream_comes_back_as_one_stream_whatever_its_lines_levels():
    """Loki 3.7.6 splits a stream by detected_level unless asked to categorize labels: the client asks, so one
    pushed stream is one stream (service_name added by Loki, detected_level kept out), as on 2.9.3."""
    with FakeLoki(version="3.7.6") as fake:
        client = LokiClient(HTTPService("oke Loki", fake.url, retry=QUICK))
        now = time.time_ns()
        lines = [(now, "level=info msg=one"), (now + 1, "level=error msg=two"), (now + 2, "no level")]
        client.push([Stream({"cluster": "oke", "job": "canary"}, lines)])
        window = {"start": now / 1e9 - 60, "end": now / 1e9 + 60}
        raw = client.http.get_json("/loki/api/v1/query_range", {"query": '{cluster="oke"}', "start": str(now - 60 * 10**9),
                                                                 "end": str(now + 60 * 10**9)})["data"]["result"]
        assert sorted(s["stream"]["detected_level"] for s in raw) == ["error", "info", "unknown"]
        streams = client.streams('{cluster="oke"}', **window)
        assert streams == [{"stream": {"cluster": "oke", "job": "canary", "service_name": "canary"},
                            "values": [[str(ts), line] for ts, line in reversed(lines)]}]
        assert client.label_values("cluster", **window) == ["oke"]


def test_loki_3x_refuses_an_instant_log_query_and_the_client_asks_none():
    """Loki 3.7.6 answers an instant query of a log selector 400; every client read of lines is a range query."""
    with FakeLoki(version="3.7.6") as fake:
        client = LokiClient(HTTPService("oke Loki", fake.url, retry=QUICK))
        with pytest.raises(APIError) as e:
            client.http.get_json("/loki/api/v1/query", {"query": '{cluster="oke"}'})
        assert e.value.status == 400 and "not supported as an instant query" in e.value.body
        client.streams('{cluster="oke"}')
        assert [r.path for r in fake.requests[1:]] == ["/loki/api/v1/query_range"]


def test_grafana_shapes_and_datasource_health(prometheus_pair):
    with FakeLoki(version="2.6.1") as old_loki, FakeGrafana(admin_password="pw", dashboards=declared_dashboards(), datasources=[
        {"uid": "prometheus", "name": "Prometheus", "type": "prometheus", "url": prometheus_pair.primary.url, "isDefault": True},
        {"uid": "loki", "name": "Loki", "type": "loki", "url": old_loki.url},
    ]) as fake:
        client = GrafanaClient(HTTPService("oke Grafana", fake.url, auth=("admin", "pw"), retry=QUICK))
        assert client.health()["database"] == "ok"
        hits = client.search("dash-db")
        assert {h["folderTitle"] for h in hits} == {"Node", "Istio", "Logs"}
        meta = client.dashboard(hits[0]["uid"])["meta"]
        assert meta["provisioned"] is True and meta["provisionedExternalId"].endswith(".json")
        assert {f["title"] for f in client.folders()} == {"Node", "Istio", "Logs"}
        assert {d["name"]: d["isDefault"] for d in client.datasources()} == {"Prometheus": True, "Loki": False}
        assert client.datasource_health("prometheus")["status"] == "OK"
        # loki-stack's default Loki 2.6.1 cannot parse Grafana's health query (docs/troubleshooting.md#loki-stack-runs-an-old-loki).
        health = client.datasource_health("loki")
        assert health["status"] == "ERROR" and "unexpected IDENTIFIER" in health["message"]


def test_grafana_wrong_password_raises_with_grafana_body():
    with FakeGrafana(admin_password="right") as fake:
        client = GrafanaClient(HTTPService("oke Grafana", fake.url, auth=("admin", "wrong"), retry=QUICK))
        with pytest.raises(APIError) as e:
            client.folders()
        assert e.value.status == 401 and "Invalid username or password" in e.value.body


def test_kiali_config_namespaces_and_workloads():
    with FakeKiali(kiali_spec()) as fake:
        client = KialiClient(HTTPService("oke Kiali", f"{fake.url}/kiali", retry=QUICK))
        clusters = client.clusters()
        assert clusters["oke"]["isKialiHome"] and not clusters["workstation"]["isKialiHome"]
        assert all(c["accessible"] for c in clusters.values())
        assert {n["cluster"] for n in client.namespaces()} == {"oke", "workstation"}
        assert [w["name"] for w in client.workloads("workstation")["workloads"]] == ["sleep", "traffic"]
        assert client.status()["status"]["Kiali state"] == "running"
        # Kiali computes health and Istio resources per namespace unless told not to (handlers/workloads.go).
        call = [r for r in fake.requests if r.path.endswith("/api/clusters/workloads")][-1]
        assert call.arg("health") == "false" and call.arg("istioResources") == "false"
        fake.inaccessible.add("workstation")
        assert client.clusters()["workstation"]["accessible"] is False
        # Kiali answers 200 with no workloads for a cluster it cannot reach (handlers/workloads.go, v2.29.0).
        assert client.workloads("workstation")["workloads"] == []
